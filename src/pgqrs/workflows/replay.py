"""What one execution of a workflow run counts as it goes (workflows/run.py)."""

from __future__ import annotations


class Replay:
    """State of one execution of a run, shared by the handles derived from one another
    (`with_time`, `with_retry`): durable sleeps, receives and child starts are numbered in the
    order they are reached."""

    __slots__ = ("counts", "sleeps")

    def __init__(self) -> None:
        self.sleeps = 0
        self.counts: dict[str, int] = {}

    def next_name(self, prefix: str) -> str:
        """`prefix#n` for the n-th call with this prefix in this execution (receives, child
        starts): the step that remembers it across executions."""
        n = self.counts.get(prefix, 0) + 1
        self.counts[prefix] = n
        return f"{prefix}#{n}"
