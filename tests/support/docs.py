"""Reading the docs: the README and every page under docs/, their sections and code blocks.

A ```python block is a program run as written (tests/docs/test_doc_snippets.py); one whose first
line is `# file: NAME.py` is one program of a group that runs together, which the page's own
test drives (MULTI_PROGRAM_PAGES). A ```py block is a fragment and is never run.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"

PYTHON = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
PROGRAM = re.compile(r"^```python\n# file: (\w+\.py)\n(.*?)^```", re.DOTALL | re.MULTILINE)

# Pages with programs that run together, and the test that runs them.
MULTI_PROGRAM_PAGES = {
    "docs/getting-started.md": "tests/docs/test_getting_started.py",
    "docs/guides/production.md": "tests/docs/test_production_guide.py",
}
# Pages whose every block the page's own test runs (it also compares what they print).
OWN_TEST_PAGES = {"docs/guides/workflows.md": "tests/docs/test_workflows_guide.py"}


def pages() -> list[Path]:
    """The README and every Markdown page of the docs site."""
    return [README, *sorted(DOCS.rglob("*.md"))]


def name(page: Path) -> str:
    """A page's path from the repository root, as the tables above spell it."""
    return page.relative_to(ROOT).as_posix()


def read(page: str | Path) -> str:
    return (ROOT / page).read_text(encoding="utf-8")


def python_blocks(text: str) -> list[tuple[int, str]]:
    """Every ```python block as (line number of its fence, code)."""
    return [(text.count("\n", 0, m.start()) + 1, m.group(1)) for m in PYTHON.finditer(text)]


def programs(text: str) -> dict[str, str]:
    """The `# file: NAME.py` programs of a page, by name, in the order they appear."""
    return dict(PROGRAM.findall(text))


def section(heading: str, text: str) -> str:
    """The section that starts with the line `heading`, up to the next heading of its level."""
    level = heading.split(" ", 1)[0]
    start = text.index(f"\n{heading}\n")
    end = text.find(f"\n{level} ", start + 1)
    return text[start : end if end >= 0 else len(text)]
