# Two commands do everything on a fresh machine: `make book` and `make test`.
# Both create the virtual environment from requirements.txt on first use and reuse it after.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
export PYTHONHASHSEED := 0
export HYPOTHESIS_PROFILE ?= ci

.PHONY: setup test lint bench clean

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

test: lint
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) -m benchmarks.bench_conv
	$(PY) -m benchmarks.bench_lenet

clean:
	rm -rf $(VENV) _build .pytest_cache .hypothesis
