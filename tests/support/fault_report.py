"""Figures of the fault scenarios (messages, lost, duplicated, recovery time), printed at the end
of the run so every `make test` shows what each scenario measured."""

from __future__ import annotations

from typing import Any

FIGURES: list[tuple[str, dict[str, Any]]] = []


def report(scenario: str, **figures: Any) -> None:
    """Record one scenario's figures; `pytest_terminal_summary` prints them after the run."""
    FIGURES.append((scenario, figures))
    shown = ", ".join(f"{key}={_fmt(value)}" for key, value in figures.items())
    print(f"\n[fault figures] {scenario}: {shown}")


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def lines() -> list[str]:
    out = []
    for scenario, figures in FIGURES:
        shown = ", ".join(f"{key}={_fmt(value)}" for key, value in figures.items())
        out.append(f"{scenario}: {shown}")
    return out
