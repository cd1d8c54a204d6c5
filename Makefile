# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP_RUN := $(VENV)/.installed-run
STAMP_DEV := $(VENV)/.installed-dev
LOCK_RUN  := requirements/run.lock
LOCK_DEV  := requirements/dev.lock
# pins from the package registry only (not this machine's local indexes or wheel folders)
COMPILE   := env -u PIP_FIND_LINKS -u PIP_EXTRA_INDEX_URL PIP_CONFIG_FILE=/dev/null \
             $(VENV)/bin/pip-compile --quiet --strip-extras --no-emit-index-url \
             --no-emit-find-links --no-header --unsafe-package aitrader

.PHONY: demo test lint typecheck pytest bench lock audit clean

$(PY):
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# installs come from the committed lock files; the package itself without its (locked) deps
$(STAMP_RUN): pyproject.toml $(LOCK_RUN) | $(PY)
	$(PY) -m pip install --quiet -r $(LOCK_RUN)
	$(PY) -m pip install --quiet --no-deps -e .
	@$(PY) -m pip check >/dev/null || { $(PY) -m pip check; echo "$(LOCK_RUN) is out of date with pyproject.toml: run make lock"; exit 1; }
	@touch $@

$(STAMP_DEV): pyproject.toml $(LOCK_DEV) | $(PY)
	$(PY) -m pip install --quiet -r $(LOCK_DEV)
	$(PY) -m pip install --quiet --no-deps -e .
	@$(PY) -m pip check >/dev/null || { $(PY) -m pip check; echo "$(LOCK_DEV) is out of date with pyproject.toml: run make lock"; exit 1; }
	@touch $@ $(STAMP_RUN)

demo: $(STAMP_RUN)
	$(VENV)/bin/aitrader demo

lint: $(STAMP_DEV)
	$(VENV)/bin/ruff check src tests benchmarks tools
	$(VENV)/bin/ruff format --check src tests benchmarks tools

typecheck: $(STAMP_DEV)
	$(VENV)/bin/mypy

pytest: $(STAMP_DEV)
	$(VENV)/bin/pytest

test: lint typecheck pytest

bench: $(STAMP_DEV)
	cd benchmarks && ../$(PY) bench_data.py && ../$(PY) bench_features.py && ../$(PY) bench_engine.py

# regenerate the lock files from pyproject.toml (after adding or bumping a dependency)
lock: | $(PY)
	$(PY) -m pip install --quiet "pip-tools>=7.4"
	$(COMPILE) -o $(LOCK_RUN) pyproject.toml
	$(COMPILE) --extra dev -o $(LOCK_DEV) pyproject.toml
	$(PY) tools/cpu_torch_lock.py $(LOCK_DEV)

# known vulnerabilities in the locked dependencies; says NO VERDICT (exit 2) when the advisory
# database cannot be reached
audit: $(STAMP_DEV)
	$(PY) tools/audit.py $(LOCK_DEV)

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache
