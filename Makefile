# Two commands for a newcomer: `make demo` and `make test`. Each creates .venv on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest system-deps model clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,broker]'
	touch $(STAMP)

system-deps:
	@bash .ci/system-deps.sh

## Run a whole simulated packing station end to end (100 parcels).
demo: system-deps $(STAMP)
	$(BIN)/prescreen demo --parcels 100

## Lint, type-check and run the whole test suite.
test: system-deps $(STAMP) lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check agent drivers models sync tests

# The repository folders map into one package (agent -> prescreen, drivers -> prescreen.drivers,
# ...); mypy checks that package through a tree of symlinks with the installed layout.
typecheck: $(STAMP)
	@rm -rf .build/typecheck && mkdir -p .build/typecheck/prescreen
	@for f in agent/*.py agent/py.typed; do ln -s "$(CURDIR)/$$f" .build/typecheck/prescreen/; done
	@for d in drivers models sync; do ln -s "$(CURDIR)/$$d" .build/typecheck/prescreen/$$d; done
	cd .build/typecheck && ../../$(BIN)/mypy --config-file ../../pyproject.toml -p prescreen

pytest: $(STAMP)
	$(BIN)/pytest -q

## Retrain the model reproducibly (TensorFlow in its own virtualenv, never a runtime dependency).
model:
	$(PYTHON) -m venv .venv-train
	.venv-train/bin/pip install --quiet --upgrade pip
	.venv-train/bin/pip install --quiet 'tensorflow-cpu>=2.16' biip jsonschema sqlite-utils paho-mqtt pyserial httpx
	.venv-train/bin/pip install --quiet --no-deps -e .
	.venv-train/bin/python -m prescreen.models.train --out models

clean:
	rm -rf $(VENV) .build build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
