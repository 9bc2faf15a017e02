"""The command-line guide (docs/guides/cli.md) documents every command, and its examples are
valid command lines (each is parsed by the real command with `--help` added). The generated
CLI reference lists every command too: test_docs_site.py."""

from __future__ import annotations

import re
import shlex

import click
import pytest
from click.testing import CliRunner

from pgqrs.cli.main import cli as pgqrs_cli
from tests.support.docs import read

PAGE = "docs/guides/cli.md"
CONSOLE = re.compile(r"```console\n(.*?)```", re.DOTALL)


def examples() -> list[list[str]]:
    found = []
    for block in CONSOLE.findall(read(PAGE)):
        for line in block.splitlines():
            if line.startswith("$ pgqrs"):
                found.append(shlex.split(line[2:], comments=True)[1:])
    return found


def commands(group: click.Group = pgqrs_cli, path: str = "pgqrs") -> list[str]:
    out = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            out.extend(commands(command, f"{path} {name}"))
        else:
            out.append(f"{path} {name}")
    return out


def test_every_command_is_documented() -> None:
    text = read(PAGE)
    missing = [c for c in commands() if f"$ {c}" not in text and f"`{c}" not in text]
    assert missing == []
    # the issue 5 list, `workflow create`, `queue update` and (issue 12) `queue show`,
    # `messages cancel`; (issue 13) the six `schedule` commands and `queue limit`; (issue 14)
    # `workflow signal` and `workflow event`, `workflow show` and `workflow restart`; later
    # issues add more (each must be documented above)
    assert len(commands()) >= 29 + 6 + 1 + 2 + 2


@pytest.mark.parametrize("args", examples(), ids=" ".join)
def test_example_parses(args: list[str]) -> None:
    result = CliRunner().invoke(pgqrs_cli, [*args, "--help"])
    assert result.exit_code == 0, result.output
