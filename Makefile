# `make test` and `make demo` work on a fresh machine: they build .venv themselves.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test test-newest demo demo-basic lint typecheck unit clean bench sql-snapshot browser docs

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

lint: $(STAMP)
	$(PY) -m ruff check src tests examples benchmarks
	$(PY) -m ruff format --check src tests examples benchmarks
	$(VENV)/bin/lint-imports

typecheck: $(STAMP)
	$(PY) -m mypy

# tests/unit only, in seconds; `make test` runs the whole suite.
unit: $(STAMP)
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

# The dashboard's browser tests drive Debian's Chromium (never a downloaded browser).
CHROMIUM ?= /usr/bin/chromium
browser:
	@test -x $(CHROMIUM) || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

# The documentation site (MkDocs + Material) into site/; warnings fail the build.
docs: $(STAMP)
	$(VENV)/bin/mkdocs build --strict

# pytest-xdist workers (`auto`: one per core; JOBS=0 runs in one process). Tests that share
# something name an `xdist_group`; `loadgroup` keeps each group on one worker.
JOBS ?= auto
XDIST = -n $(JOBS) --dist loadgroup

# $(call suite,python,paths): the tests in parallel, then those marked `serial` (a timing bound
# another worker could break) alone; exit status 5 is "none selected".
define suite
	$(1) -m pytest $(XDIST) -m "not serial" $(2) $(PYTEST_ARGS)
	$(1) -m pytest -n 0 -m serial $(2) $(PYTEST_ARGS) || [ $$? -eq 5 ]
endef

# Lint, types, and the whole suite on every backend.
test: lint typecheck browser
	$(call suite,$(PY),)

# The conformance suite again on the newest CPython >= 3.11 on the machine (.ci/newest-python),
# in a virtualenv of its own, rebuilt when that Python or pyproject.toml changes.
NEWEST_VENV := .venv-newest
test-newest:
	@set -e; python=$$(.ci/newest-python); \
	version=$$($$python -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])'); \
	stamp=$(NEWEST_VENV)/.installed-$$version; \
	echo "test-newest: Python $$version ($$python)"; \
	if [ ! -f $$stamp ] || [ pyproject.toml -nt $$stamp ]; then \
		rm -rf $(NEWEST_VENV); $$python -m venv $(NEWEST_VENV); \
		$(NEWEST_VENV)/bin/python -m pip install --quiet --upgrade pip; \
		$(NEWEST_VENV)/bin/python -m pip install --quiet -e '.[dev]'; \
		touch $$stamp; \
	fi
	$(call suite,$(NEWEST_VENV)/bin/python,tests/conformance)

# The demos need the package alone (examples/ import pgqrs and rich, a dependency), not the dev
# extra: a fresh machine installs just that; a .venv with the dev install is used as it is.
DEMO_STAMP := $(VENV)/.installed-demo
$(DEMO_STAMP): pyproject.toml
	@if [ $(STAMP) -nt pyproject.toml ]; then :; else \
		$(PYTHON) -m venv $(VENV) && $(PY) -m pip install --quiet --upgrade pip && \
		$(PY) -m pip install --quiet -e . ; fi
	touch $(DEMO_STAMP)

# The pgqrs story with the command line, on a fresh ./pgqrs.db, in under a minute.
demo: $(DEMO_STAMP)
	$(PY) examples/demo.py

demo-basic: $(DEMO_STAMP)
	$(PY) examples/basic_queue.py

# Side-by-side benchmark against pgqrs 0.15.3 and raw SQL (about an hour; needs PostgreSQL).
# compare.py builds its own virtualenvs under benchmarks/results/work; results in benchmarks/results.
bench:
	$(PYTHON) benchmarks/compare.py $(BENCH_ARGS)

# Render every SQL statement of every backend into docs/sql/ (review the diff, commit it);
# tests/unit/test_sql_snapshot.py fails while those files differ from the code.
sql-snapshot: $(STAMP)
	$(PY) -m pgqrs.store.sql.snapshot docs/sql

clean:
	rm -rf $(VENV) $(NEWEST_VENV) .mypy_cache .ruff_cache .pytest_cache
