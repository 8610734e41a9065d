"""Every error prescreen raises, under one root.

Callers catch at the level that suits them::

    PrescreenError
    ├── ConfigError              a config file that cannot be used (names file, key, expectation)
    ├── DeviceError              anything between us and a serial device (.url)
    │   ├── DeviceNotFound
    │   ├── DeviceTimeout
    │   ├── FrameError           bytes that are not a valid frame (.raw)
    │   └── UnsupportedDevice    unknown URL scheme or protocol name
    ├── OrderError               order data could not be had (.reason is a reason code)
    ├── OutboxError              the durable store refused a write (disk full, corrupt file)
    ├── SyncError                the uplink or the receiver (.rc, .topic)
    │   └── BrokerUnavailable
    ├── ModelError
    │   └── ModelLoadError       missing, corrupt or mismatched model file
    └── RecordError              a record that does not match its schema

Dependency errors (pyserial, paho, sqlite3, TFLite) are translated where they enter,
so nothing above the module that wraps a dependency needs to know its exception types.
"""

from __future__ import annotations


class PrescreenError(Exception):
    """Root of every error this package raises on purpose."""


class ConfigError(PrescreenError):
    """A configuration file or value that cannot be used."""


class DeviceError(PrescreenError):
    """A serial device failed; ``url`` says which one."""

    def __init__(self, message: str, *, url: str | None = None) -> None:
        super().__init__(message)
        self.url = url


class DeviceNotFound(DeviceError):
    """The port does not exist (unplugged, wrong path)."""


class DeviceTimeout(DeviceError):
    """The device did not answer in time."""


class FrameError(DeviceError):
    """Bytes that do not form a valid frame of the protocol; ``raw`` keeps them."""

    def __init__(self, message: str, *, raw: bytes = b"", url: str | None = None) -> None:
        super().__init__(message, url=url)
        self.raw = raw


class UnsupportedDevice(DeviceError):
    """A URL scheme or protocol name nobody implements."""


class OrderError(PrescreenError):
    """Order data could not be fetched; ``reason`` is the record's reason code."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class OutboxError(PrescreenError):
    """The outbox could not durably store or update a record."""


class SyncError(PrescreenError):
    """Uplink, downlink or receiver trouble; ``rc`` is paho's code when there is one."""

    def __init__(self, message: str, *, rc: int | None = None, topic: str | None = None) -> None:
        super().__init__(message)
        self.rc = rc
        self.topic = topic


class BrokerUnavailable(SyncError):
    """The MQTT broker cannot be reached or refused us."""


class ModelError(PrescreenError):
    """The on-device model cannot be used."""


class ModelLoadError(ModelError):
    """A model file is missing, corrupt, of an unknown version or of the wrong shape."""


class RecordError(PrescreenError):
    """A record that does not validate against its JSON Schema."""
