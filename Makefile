# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv from the
# requirements files on first use (and again whenever a requirements file changes).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

NODE_STAMP := node_modules/.package-lock.json

.PHONY: demo demo-classifier test test-fast lint bench clean worker iac

# The real Functions Python worker library (its loader checks the app in the tests and in `mlops up`).
# It declares Python 3.13 but runs on 3.11, so it is installed without its metadata checks; a requirements
# file cannot carry these flags. What it needs besides (azure-functions, werkzeug) comes with requirements.txt.
WORKER_PACKAGES := azure-functions-runtime==1.3.0 azurefunctions-extensions-base==1.2.0

$(STAMP): requirements.txt requirements-dev.txt Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps --ignore-requires-python $(WORKER_PACKAGES)
	$(PY) -m pip install --quiet --no-deps --editable .
	@touch $(STAMP)

worker: $(STAMP)
	$(PY) -m pip install --quiet --no-deps --ignore-requires-python $(WORKER_PACKAGES)

demo: $(STAMP)
	$(VENV)/bin/mlops demo

# The same loop with a classifier (scikit-learn's breast_cancer data, gated on log loss).
demo-classifier: $(STAMP)
	$(VENV)/bin/mlops demo --data breast_cancer

# Azurite (the Table Storage emulator the store contract tests run against) comes from npm.
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

# Infrastructure checks in a venv of their own (checkov is heavy and pins an old Bicep parser):
# checkov, then pycep-parser 0.7.1 over its pin (one pip run would refuse the conflict).
IAC := .venv-iac
IAC_STAMP := $(IAC)/.installed

$(IAC_STAMP): requirements-iac.txt
	@test -x $(IAC)/bin/python || $(PYTHON) -m venv $(IAC)
	$(IAC)/bin/pip install --quiet -r requirements-iac.txt
	$(IAC)/bin/pip install --quiet --no-deps pycep-parser==0.7.1
	@touch $@

# Parse every Bicep file and scan infra/ and pipelines/ with checkov (tests/integration/test_infra_scan.py runs it too).
iac: $(IAC_STAMP)
	$(IAC)/bin/python infra/check.py

# lint first: a type error or a broken layer rule fails fast, before the slow tests.
test: lint $(IAC_STAMP) $(NODE_STAMP)
	$(PY) -m pytest

# The unit layer only (no sockets, no processes): under a minute.
test-fast: $(STAMP)
	$(PY) -m pytest -q tests/unit

# ruff, the type checker (mypy, config in pyproject.toml) and the layer rules (import-linter), all at 0 findings.
lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(VENV)/bin/lint-imports

bench: $(STAMP)
	$(PY) -m benchmarks.scoring
	$(PY) -m benchmarks.gate
	$(PY) -m benchmarks.events
	$(PY) -m benchmarks.cold_start
	$(PY) -m benchmarks.invocations
	$(PY) -m benchmarks.router
	$(PY) -m benchmarks.input_bounds
	$(PY) -m benchmarks.crash_recovery
	$(PY) -m benchmarks.soak

clean:
	-$(VENV)/bin/mlops down
	rm -rf $(VENV) $(IAC) node_modules .mlops .pytest_cache .ruff_cache .mypy_cache
