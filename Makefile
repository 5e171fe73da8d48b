# Two commands do everything on a fresh machine: `make book` and `make test`.
# Both create the virtual environment from requirements.txt on first use and reuse it after.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
export PYTHONHASHSEED := 0
export HYPOTHESIS_PROFILE ?= ci

.PHONY: setup test lint bench book browser axe pdf clean

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

# cnnlib's public API is typed: every argument and public return annotated (ruff's ANN rules),
# and mypy finds no type error (cnnlib.testing, the graders' own package, is left out).
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff check cnnlib --extend-exclude 'cnnlib/testing*' --select ANN001,ANN201,ANN204,ANN206
	$(VENV)/bin/mypy cnnlib --exclude 'cnnlib/testing' --ignore-missing-imports --follow-imports=silent

# The book: every chapter executed (results cached in _build/.jupyter_cache), warnings fail.
# The build does not depend on the caller's environment: book/_ext/kernels.py gives the kernels
# matplotlib's inline backend (whatever MPLBACKEND says) and IPC sockets instead of TCP.
book: $(STAMP)
	$(VENV)/bin/jupyter-book build . --builder html -n -W --keep-going

# The whole book as one PDF (_build/pdf/book.pdf), printed from the HTML by Debian's chromium.
pdf: book browser
	$(PY) book/_ext/pdf.py _build/html _build/pdf/book.pdf

# axe-core from npm, which the browser tests inject into every page (nothing fetched at run time).
AXE := tests/_node/node_modules/axe-core/axe.min.js
axe: $(AXE)
$(AXE): tests/_node/package.json tests/_node/package-lock.json
	@command -v npm >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq npm; }
	cd tests/_node && npm ci --no-audit --no-fund --silent
	touch $@

# Headless Chromium from Debian for the browser tests (never a browser a tool downloads).
browser:
	@command -v chromium >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; }

test: lint book pdf browser axe sandbox postgres
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m pytest

bench: $(STAMP)
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) -m benchmarks.bench_conv --threads 1
	OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 MKL_NUM_THREADS=2 $(PY) -m benchmarks.bench_conv --threads 2
	OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 MKL_NUM_THREADS=2 $(PY) -m benchmarks.bench_conv --threads 2 --warm
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) -m benchmarks.bench_step --threads 1
	OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 MKL_NUM_THREADS=2 $(PY) -m benchmarks.bench_step --threads 2
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) -m benchmarks.bench_split
	$(PY) -m benchmarks.bench_lenet
	$(PY) -m grading.bench

# The students' notebooks: exercises/ is generated from solutions/ (the only notebooks edited by
# hand) by nbgrader, which runs alembic from PATH to keep its gradebook (gradebook.db) up to date.
.PHONY: release
release: $(STAMP)
	rm -rf exercises
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/nbgrader generate_assignment "*" --force

# Grading a class: the submissions under submitted/ that changed since they were last graded
# (FORCE=1: all), ASSIGNMENT=/STUDENT= to choose (names, comma-separated), each kernel in a bubblewrap
# sandbox, on an embedded Dask cluster of WORKERS processes (default: all cores) or the one at
# SCHEDULER=tcp://host:8786, into the gradebook at DB_URL= (default: gradebook.db), TIMEOUT=
# seconds per notebook (default 600).
# Exit 1: the machinery failed on a submission; 2: the setup is broken (an assignment's own
# solution does not score full marks) or a name matches nothing, nothing graded.
.PHONY: grade demo-class sandbox
grade: $(STAMP) sandbox
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m grading.run --course . $(if $(WORKERS),--workers $(WORKERS)) \
	  $(if $(ASSIGNMENT),--assignment "$(ASSIGNMENT)") $(if $(STUDENT),--student "$(STUDENT)") $(if $(FORCE),--force) \
	  $(if $(SCHEDULER),--scheduler "$(SCHEDULER)") $(if $(DB_URL),--db-url "$(DB_URL)") \
	  $(if $(TIMEOUT),--timeout "$(TIMEOUT)")

# A shipped demo class in submitted/, to try `make grade` on.
demo-class: $(STAMP)
	$(PY) -m grading.demo --course .

# Debian's bubblewrap (bwrap) isolates each student's kernel.
sandbox:
	@command -v bwrap >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq bubblewrap; }

# Debian's PostgreSQL server binaries: tests/test_postgres.py runs its own throw-away server
# (initdb in a temporary folder) to test a gradebook shared with the formgrader (--db-url).
.PHONY: postgres
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql; }

clean:
	rm -rf $(VENV) _build .pytest_cache .hypothesis
