"""Protocol parsers against the byte-level vectors in shared/docs/protocols.md."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prescreen.core.errors import FrameError, UnsupportedDevice
from prescreen.drivers.base import WeightReading, to_kg
from prescreen.drivers.registry import scale_protocol, scale_protocols


def parse(protocol: str, data: bytes) -> list[WeightReading | None]:
    proto = scale_protocol(protocol)
    return [proto.parse(frame) for frame in proto.framer().feed(data)]


@pytest.mark.parametrize(
    ("data", "status", "stable", "kg"),
    [
        (b"S S      0.256 kg\r\n", "ok", True, Decimal("0.256")),
        (b"S D      0.254 kg\r\n", "motion", False, Decimal("0.254")),
        (b"S S    100.00 g\r\n", "ok", True, Decimal("0.1")),
        (b"S +\r\n", "overload", False, None),
        (b"S -\r\n", "underload", False, None),
        (b"S I\r\n", "error", False, None),
        (b"ES\r\n", "error", False, None),
        (b"ET\r\n", "error", False, None),
        (b"S S     -0.120 kg\r\n", "underload", False, None),
    ],
)
def test_mt_sics_vectors(data: bytes, status: str, stable: bool, kg: Decimal | None) -> None:
    (reading,) = parse("mt-sics", data)
    assert reading is not None
    assert (reading.status, reading.stable, reading.weight_kg) == (status, stable, kg)


def test_mt_sics_acknowledgements_carry_no_weight() -> None:
    assert parse("mt-sics", b'Z A\r\nT A 2.486 g\r\nI4 A "0123456789"\r\n') == [None, None, None]


@pytest.mark.parametrize(
    ("data", "status", "stable", "kg"),
    [
        (b"\n0001.25lb\r\n00\r\x03", "ok", True, to_kg(Decimal("1.25"), "lb")),
        (b"\n0001.25lb\r\n10\r\x03", "motion", False, to_kg(Decimal("1.25"), "lb")),
        (b"\n0000.00lb\r\n20\r\x03", "ok", True, Decimal(0)),
        (b"\n^^^^^^^lb\r\n02\r\x03", "overload", False, None),
        (b"\n_______lb\r\n01\r\x03", "underload", False, None),
        (b"\n-------lb\r\n08\r\x03", "error", False, None),
        (b"\n?\r\x03", "error", False, None),
        (b"\n 2lb 4.0oz\r\n00\r\x03", "ok", True, to_kg(Decimal(36), "oz")),
        # parity bit set on every byte (a 7E1 scale read at 8N1)
        (
            bytes(b | 0x80 if b not in (3,) else b for b in b"\n0001.25lb\r\n00\r") + b"\x03",
            "ok",
            True,
            to_kg(Decimal("1.25"), "lb"),
        ),
    ],
)
def test_nci_vectors(data: bytes, status: str, stable: bool, kg: Decimal | None) -> None:
    (reading,) = parse("nci", data)
    assert reading is not None
    assert (reading.status, reading.stable, reading.weight_kg) == (status, stable, kg)


def test_nci_status_only_reply_is_not_a_weight() -> None:
    assert parse("nci", b"\n00\r\x03") == [None]


@pytest.mark.parametrize(
    ("data", "status", "kg"),
    [
        (b"\x02001.25\r", "ok", to_kg(Decimal("1.25"), "lb")),
        (b"\x0201.250\r", "ok", Decimal("1.250")),
        (b"\x0201.25N\r", "ok", to_kg(Decimal("1.25"), "lb")),
        (b"\x02?a\r", "motion", None),
        (b"\x02?b\r", "overload", None),
        (b"\x02?d\r", "underload", None),
        (b"\x02?p\r", "ok", Decimal(0)),
        (b"garbage\x02001.25\r", "ok", to_kg(Decimal("1.25"), "lb")),
    ],
)
def test_toledo_8213_vectors(data: bytes, status: str, kg: Decimal | None) -> None:
    (reading,) = parse("toledo-8213", data)
    assert reading is not None
    assert (reading.status, reading.weight_kg) == (status, kg)


def _continuous(body: bytes) -> bytes:
    return body + bytes([(-sum(b & 0x7F for b in body)) & 0x7F])


@pytest.mark.parametrize(
    ("data", "status", "kg"),
    [
        # the docs' vector: 12.50 lb gross stable, SWA 0x2C (XXXX.XX), SWB 0x20, SWC 0x20, tare 0
        (_continuous(b"\x02\x2c\x20\x20001250000000\r"), "ok", to_kg(Decimal("12.50"), "lb")),
        (_continuous(b"\x02\x2d\x30\x20001250000000\r"), "ok", Decimal("1.250")),  # kg, XXX.XXX
        (_continuous(b"\x02\x2c\x28\x20001250000000\r"), "motion", to_kg(Decimal("12.50"), "lb")),
        (_continuous(b"\x02\x2c\x24\x20000000000000\r"), "overload", None),
        (_continuous(b"\x02\x2c\x22\x20000150000000\r"), "underload", None),
        (_continuous(b"\x02\x2a\x20\x20000125000000\r"), "ok", to_kg(Decimal("125"), "lb")),
        (_continuous(b"\x02\xac\xa0\xa0001250000000\r"), "ok", to_kg(Decimal("12.50"), "lb")),  # parity
        (b"\x02\x13" + _continuous(b"\x02\x2c\x20\x20001250000000\r"), "ok", to_kg(Decimal("12.50"), "lb")),
    ],
)
def test_toledo_continuous_vectors(data: bytes, status: str, kg: Decimal | None) -> None:
    (reading,) = parse("toledo-continuous", data)
    assert reading is not None
    assert (reading.status, reading.weight_kg) == (status, kg)


def test_toledo_continuous_refuses_a_bad_checksum() -> None:
    good = _continuous(b"\x02\x2c\x20\x20001250000000\r")
    garbled = good[:6] + b"9" + good[7:]  # one digit hit by noise: 12.50 would read 19.50
    assert parse("toledo-continuous", garbled) == []
    with pytest.raises(FrameError, match="checksum"):
        scale_protocol("toledo-continuous").parse(garbled)


def test_units_convert_exactly() -> None:
    assert to_kg(Decimal(1), "lb") == Decimal("0.45359237")
    assert to_kg(Decimal(16), "oz") == Decimal("0.45359237")
    assert to_kg(Decimal(1250), "g") == Decimal("1.250")


@pytest.mark.parametrize("name", sorted(scale_protocols()))
@pytest.mark.parametrize("unit", ["kg", "lb"])
def test_encode_parse_round_trip(name: str, unit: str) -> None:
    proto = scale_protocol(name)
    sent = WeightReading("ok", True, Decimal("2.345"))
    (back,) = [proto.parse(f) for f in proto.framer().feed(proto.encode(sent, unit))]
    assert back is not None
    assert back.stable
    assert back.weight_kg is not None
    assert abs(back.weight_kg - Decimal("2.345")) < Decimal("0.005")
    for status in ("overload", "underload", "motion"):
        reading = WeightReading(status, False, None if status != "motion" else Decimal(1))  # type: ignore[arg-type]
        (parsed,) = [proto.parse(f) for f in proto.framer().feed(proto.encode(reading, unit))]
        assert parsed is not None
        assert parsed.status == status
        assert not parsed.stable


def test_unknown_protocol_lists_known_ones() -> None:
    with pytest.raises(UnsupportedDevice, match="known: mt-sics, nci, toledo-8213, toledo-continuous"):
        scale_protocol("acme")


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(scale_protocols()))
@given(data=st.binary(max_size=300))
def test_arbitrary_bytes_never_crash_a_parser(name: str, data: bytes) -> None:
    proto = scale_protocol(name)
    for frame in proto.framer().feed(data):
        try:
            reading = proto.parse(frame)
        except FrameError:
            continue
        if reading is not None and reading.stable:
            # A stable weight may only come out of a frame that really encodes one.
            assert reading.weight_kg is not None
            assert reading.weight_kg >= 0
            assert proto.parse(frame) == reading


_RESYNC = {"mt-sics": b"\r\n", "nci": b"\x03", "toledo-8213": b"\r", "toledo-continuous": b""}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(scale_protocols()))
@given(noise=st.binary(max_size=50))
def test_line_noise_then_a_frame_reads_that_frame(name: str, noise: bytes) -> None:
    """After noise and a frame boundary the driver resynchronises on the next real frame."""
    proto = scale_protocol(name)
    good = proto.encode(WeightReading("ok", True, Decimal("1.500")), "kg")
    last = None
    for frame in proto.framer().feed(noise + _RESYNC[name] + good + good):
        try:
            last = proto.parse(frame)
        except FrameError:
            last = None
    assert last is not None
    assert last.stable
    assert last.weight_kg == Decimal("1.500")
