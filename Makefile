# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create .venv, install the CPU build of torch first (an unpinned torch would pull a
# multi-GB CUDA build), then mixdepth with its test extras.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.mixdepth-installed

.PHONY: setup demo test lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: setup
	$(VENV)/bin/mixdepth demo

test: setup
	$(PY) -m ruff check src tests benchmarks experiments
	$(PY) -m pytest -q -n 2 --dist loadfile

lint: setup
	$(PY) -m ruff check src tests benchmarks experiments

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
