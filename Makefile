# The two commands of the README: `make demo` and `make test`. Both set up .venv first.
# `make test-fast` is for development: the tests that neither train nor start a process.
# `make gpu-check` is for a CUDA machine whose environment is already installed.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
GPU_OUT ?= gpu.json
GPU_BUDGET_S ?= 450

.PHONY: setup demo test test-fast lint config-doc gpu-check

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# the CPU build of torch first, pinned, so nothing below resolves a (CUDA) newer one
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(VENV)/bin/factdyn demo

# The whole suite (CI runs this). `make test PYTEST_ARGS=--durations=15` names the slowest.
test: setup
	bash scripts/install-chromium.sh
	$(PY) -m pytest -q -n auto $(PYTEST_ARGS)

# The tests not marked slow by tests/conftest.py's rule: no training, no subprocess.
test-fast: setup
	$(PY) -m pytest -q -n auto -m "not slow" $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

# The configuration reference, from the fields' own descriptions (tests/test_config_reference.py checks it).
config-doc: setup
	$(PY) -m factdyn.config.reference > docs/config.md

# No `setup` first: GPU machines reach no package index (PY=python for another environment).
gpu-check:
	$(PY) benchmarks/gpu_check.py --out $(GPU_OUT) --budget-s $(GPU_BUDGET_S)
