# `make test` and `make demo` work on a fresh machine: they build .venv themselves.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test demo demo-basic lint typecheck unit clean bench sql-snapshot browser docs

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

# Lint, types, and the whole suite on every backend.
test: lint typecheck browser
	$(PY) -m pytest $(PYTEST_ARGS)

# The pgqrs story with the command line, on a fresh ./pgqrs.db, in under a minute.
demo: $(STAMP)
	$(PY) examples/demo.py

demo-basic: $(STAMP)
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
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
