"""Reading the README: its `## ` sections and their code blocks."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def section(heading: str, text: str | None = None) -> str:
    """The README section that starts with the line `heading`, up to the next `## ` heading."""
    text = README.read_text(encoding="utf-8") if text is None else text
    start = text.index(f"\n{heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else len(text)]


def sections() -> list[tuple[str, str]]:
    """Every `## ` section as (heading, body)."""
    text = README.read_text(encoding="utf-8")
    parts = re.split(r"\n(?=## )", text)
    return [(part.splitlines()[0], part) for part in parts if part.startswith("## ")]
