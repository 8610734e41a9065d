"""Loading the model defers numpy's unused subpackages, and they still work when something uses them.

Each case runs in a fresh interpreter: numpy is imported once per process, so only a process that
has not imported it yet shows what loading the model imports.
"""

from __future__ import annotations

import json
import subprocess
import sys

LOAD_AND_REPORT = """
import json, sys
from prescreen.models import features
from prescreen.models.runner import NUMPY_DEFERRED, load_risk_model
model = load_risk_model()
score = model.score([0.5] * len(features.NAMES))
ran = [name for name in sys.modules if name.startswith(tuple(n + "." for n in NUMPY_DEFERRED))
       or name in NUMPY_DEFERRED and type(sys.modules[name]).__name__ != "_LazyModule"]
numpy_in = "numpy.core" in sys.modules or "numpy._core" in sys.modules
print(json.dumps({"ran": ran, "numpy": numpy_in, "score": score}))
"""


def run(code: str) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    found: dict[str, object] = json.loads(result.stdout.splitlines()[-1])
    return found


def test_loading_the_model_runs_none_of_the_deferred_subpackages() -> None:
    """numpy 1 imports them in its ``__init__`` (deferred here); numpy 2 (Python 3.12) at first use."""
    found = run(LOAD_AND_REPORT)
    assert found["numpy"]  # the runtime imported numpy, so the check below looks after it
    assert found["ran"] == []  # none of them ran, nor any of their submodules


def test_the_check_sees_a_subpackage_that_ran() -> None:
    """The same report names a deferred subpackage once it was used (the check above can fail)."""
    found = run("import numpy.random\n" + LOAD_AND_REPORT)
    assert "numpy.random" in found["ran"]  # type: ignore[operator]


USE_THEM = """
import numpy
draws = numpy.random.default_rng(7).integers(0, 100, 5).tolist()
masked = float(numpy.ma.masked_array([1.0, 2.0], mask=[0, 1]).sum())
print(json.dumps({"draws": draws, "masked": masked}))
"""


def test_a_deferred_subpackage_works_when_used() -> None:
    """numpy.random and numpy.ma run at their first use, whole: the same answers as eager ones."""
    after_model = run(LOAD_AND_REPORT + USE_THEM)
    eager = run("import json\n" + USE_THEM)
    assert after_model == eager
    assert eager["masked"] == 1.0


def test_scores_are_those_of_an_eager_numpy() -> None:
    assert run(LOAD_AND_REPORT)["score"] == run("import numpy\n" + LOAD_AND_REPORT)["score"]
