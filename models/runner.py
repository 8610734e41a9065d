"""Load and run the full-integer int8 TFLite risk model behind one adapter.

tflite-runtime (Python ≤ 3.11, numpy<2) and its successor ai-edge-litert (3.12+) expose the same
``Interpreter``; whichever is installed is used. A model is only accepted when its manifest's
SHA-256 matches the file, its feature spec is the one this code computes, and its tensors have the
shapes and dtypes the spec implies; anything else raises :class:`ModelLoadError`, and the agent then
keeps running rules-only (and says so in every record).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import math
import sys
from collections.abc import Iterator, Sequence
from importlib.machinery import ModuleSpec, PathFinder
from pathlib import Path
from types import ModuleType
from typing import Any

from prescreen.core.errors import ModelLoadError
from prescreen.core.package_data import package_dir
from prescreen.models import features
from prescreen.models.signals import ParcelSignals

MANIFEST = "model.json"
SUPPORTED_FORMAT = 1

# numpy's subpackages that importing numpy 1 runs although neither the runtime nor this module
# uses them: ``numpy.random`` alone loads 20-odd modules and OpenSSL's hashing through ``secrets``.
# (``numpy.linalg`` and ``numpy.matrixlib`` are not here: numpy's own modules import from them.
# numpy 2, with ai-edge-litert on Python 3.12, imports these at first use itself.)
NUMPY_DEFERRED = ("numpy.random", "numpy.fft", "numpy.polynomial", "numpy.ma", "numpy.ctypeslib")


class _DeferredFinder:
    """Finds the named modules with the standard library's :class:`importlib.util.LazyLoader`:
    the module object exists (numpy's ``from . import random`` binds it) and its code runs at the
    first attribute anyone reads from it, so whatever uses it later still gets the whole module.
    (A meta path finder needs only ``find_spec``; ``importlib.abc`` would import
    ``importlib.resources`` for nothing.)"""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = frozenset(names)

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname not in self.names:
            return None
        spec = PathFinder.find_spec(fullname, path, target)
        if spec is not None and spec.loader is not None:
            spec.loader = importlib.util.LazyLoader(spec.loader)
        return spec


@contextlib.contextmanager
def deferred_imports(names: Sequence[str]) -> Iterator[None]:
    """Inside the block, importing one of ``names`` (first time) defers running its code.

    Why: the agent's resident memory (targets.md: ≤ 50 MB idle). The runtime imports numpy, and
    numpy's ``__init__`` runs every subpackage; the ones in :data:`NUMPY_DEFERRED` cost the running
    agent ~4.5 MB it never uses. A module already imported stays as it is, and imports after the
    block are the interpreter's own again.
    """
    finder = _DeferredFinder(names)
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


def _interpreter_class() -> Any:
    with deferred_imports(NUMPY_DEFERRED):
        return _import_interpreter_class()


def _import_interpreter_class() -> Any:
    try:
        from tflite_runtime.interpreter import Interpreter
    except ImportError:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            try:  # the training virtualenv: evaluate int8 through this same runner
                import tensorflow as tf

                Interpreter = tf.lite.Interpreter
            except ImportError:
                raise ModelLoadError(
                    "no TFLite runtime: pip install tflite-runtime (Python ≤ 3.11) or ai-edge-litert"
                ) from None
    return Interpreter


def default_dir() -> Path:
    """Where the shipped model lives (inside the installed package)."""
    return package_dir("prescreen.models")


class RiskModelRunner:
    """One loaded model; :meth:`score` is safe to call from one thread at a time."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.manifest = self._manifest()
        self.version: str = self.manifest["version"]
        # "logit": the int8 output is the logit (resolution near 1); else it is the probability.
        self._logit = self.manifest.get("output") == "logit"
        model_path = directory / self.manifest["file"]
        try:
            content = model_path.read_bytes()
        except OSError as exc:
            raise ModelLoadError(f"{model_path}: cannot read model: {exc.strerror}") from None
        digest = hashlib.sha256(content).hexdigest()
        if digest != self.manifest["sha256"]:
            raise ModelLoadError(f"{model_path}: SHA-256 {digest[:12]}… does not match the manifest")
        interpreter_class = _interpreter_class()
        self.runtime: str = interpreter_class.__module__.split(".")[0]  # which adapter branch ran
        try:
            self._interpreter = interpreter_class(model_content=content)
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelLoadError(f"{model_path}: not a loadable TFLite model: {exc}") from None
        self._check_tensors()

    def _manifest(self) -> dict[str, Any]:
        path = self.directory / MANIFEST
        try:
            manifest: dict[str, Any] = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"{path}: missing or unreadable model manifest: {exc}") from None
        if manifest.get("format") != SUPPORTED_FORMAT:
            raise ModelLoadError(
                f"{path}: model format {manifest.get('format')!r} is not supported "
                f"(this agent reads format {SUPPORTED_FORMAT})"
            )
        spec = manifest.get("feature_spec", {})
        if spec.get("version") != features.SPEC_VERSION or spec.get("names") != list(features.NAMES):
            raise ModelLoadError(
                f"{path}: model was trained on feature spec {spec.get('version')!r}, "
                f"this agent computes {features.SPEC_VERSION}"
            )
        return manifest

    def _check_tensors(self) -> None:
        (inp,) = self._interpreter.get_input_details()
        (out,) = self._interpreter.get_output_details()
        width = len(features.NAMES)
        if list(inp["shape"]) != [1, width] or inp["dtype"].__name__ != "int8":
            raise ModelLoadError(
                f"model input is {list(inp['shape'])} {inp['dtype'].__name__}, expected [1, {width}] int8"
            )
        if list(out["shape"]) != [1, 1] or out["dtype"].__name__ != "int8":
            raise ModelLoadError(
                f"model output is {list(out['shape'])} {out['dtype'].__name__}, expected [1, 1] int8"
            )
        self._in_index, (self._in_scale, self._in_zero) = inp["index"], inp["quantization"]
        self._out_index, (self._out_scale, self._out_zero) = out["index"], out["quantization"]
        self._dtype = inp["dtype"]
        import numpy as np  # the runtime brought it in already

        # float32, as numpy casts these Python numbers when they meet a float32 array
        self._in_scale32, self._in_zero32 = np.float32(self._in_scale), np.float32(self._in_zero)
        self._low, self._high = np.float32(-128), np.float32(127)

    def quantize(self, vector: list[float]) -> Any:
        """The model's int8 input for a feature vector: ``clip(round(v / scale) + zero)``, in float32.

        In place, with the ufuncs themselves: ``np.round`` rounds through ``np.rint`` when it keeps
        no decimals, and ``np.clip``'s Python wrapper cost more than the rest (6.0 -> 4.1 µs a call);
        the same values (tested against the ``np.clip(np.round(...))`` it replaces).
        """
        import numpy as np

        scaled = np.array(vector, dtype=np.float32)
        np.divide(scaled, self._in_scale32, out=scaled)
        np.rint(scaled, out=scaled)
        np.add(scaled, self._in_zero32, out=scaled)
        np.maximum(scaled, self._low, out=scaled)
        np.minimum(scaled, self._high, out=scaled)
        return scaled.astype(self._dtype).reshape(1, -1)

    def score(self, vector: list[float]) -> float:
        """Risk in [0, 1] for one feature vector."""
        self._interpreter.set_tensor(self._in_index, self.quantize(vector))
        self._interpreter.invoke()
        raw = int(self._interpreter.get_tensor(self._out_index)[0, 0])
        value = (raw - self._out_zero) * self._out_scale
        if self._logit:
            return 1.0 / (1.0 + math.exp(-value))
        return float(min(max(value, 0.0), 1.0))

    def score_signals(self, signals: ParcelSignals) -> float:
        """Risk for a parcel as the station measured it."""
        return self.score(features.vectorize(signals))

    def threshold_for(self, budget: float) -> float:
        """The score above which the model alone raises at most ``budget`` of parcels.

        Read from the calibration the training run measured on its whole mix of generators
        (``thresholds.calibration``: pairs of raise share and threshold, share ascending); the
        tightest threshold whose measured share does not exceed ``budget``.
        """
        calibration = self.manifest.get("thresholds", {}).get("calibration") or []
        fitting = [threshold for share, threshold in calibration if share <= budget]
        return float(min(fitting)) if fitting else 1.0

    def expected_raise_rate(self, threshold: float) -> float:
        """The share of parcels the model alone raised at ``threshold`` on its training mix."""
        calibration = self.manifest.get("thresholds", {}).get("calibration") or []
        shares = [share for share, at in calibration if at >= threshold]
        return float(max(shares)) if shares else 0.0


def load_risk_model(directory: str | Path | None = None) -> RiskModelRunner:
    """Load the model in ``directory`` (default: the one shipped in the package)."""
    return RiskModelRunner(Path(directory) if directory else default_dir())
