"""`make docs`: the MkDocs site builds with `--strict` and without a single warning, every page
under docs/ is in it, and the generated CLI reference lists every command."""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import pgqrs
import pgqrs.sync
from tests.docs.test_cli_guide import commands
from tests.support.docs import DOCS, ROOT

# The build takes seconds alone, longer on a loaded machine beside other tests.
pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    # The snippets extension reads benchmarks/README.md relative to the working directory.
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    log = done.stdout + done.stderr
    assert done.returncode == 0, log
    assert [line for line in log.splitlines() if "WARNING" in line] == []
    return out


def text_of(page: Path) -> str:
    text = html.unescape(re.sub(r"<[^>]+>", " ", page.read_text(encoding="utf-8")))
    return re.sub(r"\s+", " ", text)


def test_every_page_is_built(site: Path) -> None:
    for page in DOCS.rglob("*.md"):
        relative = page.relative_to(DOCS).with_suffix("")
        if relative.name in ("index", "README"):
            built = site / relative.parent / "index.html"
        else:
            built = site / relative / "index.html"
        assert built.exists(), page


def test_the_cli_reference_lists_every_command(site: Path) -> None:
    reference = text_of(site / "reference" / "cli" / "index.html")
    assert [c for c in commands() if f"Usage: {c} " not in reference] == []


def test_the_api_reference_is_generated_from_docstrings(site: Path) -> None:
    api = text_of(site / "api" / "index.html")
    assert "Connect with every setting at its default" in api  # pgqrs.connect's docstring
    assert "run_worker" in api
    assert "Consumer" in text_of(site / "api" / "sync" / "index.html")


def test_the_benchmark_page_includes_the_benchmarks_readme(site: Path) -> None:
    page = text_of(site / "benchmarks" / "index.html")
    assert "Baseline before the fast paths" in page  # a heading of benchmarks/README.md
    assert "this/pgqrs" in page  # the results table


def test_every_public_name_has_an_api_entry() -> None:
    pages = "".join(page.read_text() for page in (DOCS / "api").glob("*.md"))
    entries = set(re.findall(r"^::: (pgqrs(?:\.sync)?\.\w+)$", pages, re.MULTILINE))
    # `pgqrs.admin` is also a submodule, which the reference would render instead: the
    # function is listed by its module path.
    entries |= {"pgqrs.admin"} if "\n::: pgqrs.admin.admin\n" in pages else set()
    public = {f"pgqrs.{n}" for n in pgqrs.__all__ if n != "__version__"}
    public |= {f"pgqrs.sync.{n}" for n in pgqrs.sync.__all__}
    assert sorted(public - entries) == []
