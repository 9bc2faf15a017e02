"""Turso's spelling step (`render("turso")` applies it before SQLite's): SQLite's statements,
without user-defined SQL functions, and with one planner hint.

pyturso cannot register Python functions, so every call of the SQLite backend's
`pgqrs_add_seconds(ts, secs)` and `pgqrs_seconds_between(later, earlier)` is rewritten into the
same arithmetic in plain SQL: stored timestamps are fixed-width UTC text with microseconds,
which SQLite's date functions would cut to milliseconds, so the arithmetic is done on integer
microseconds (and a sum formatted back).
"""

from __future__ import annotations

import re

# `b` is the stored timestamp, `s` the seconds to add (a float); NULL in either gives NULL.
# Fractions shorter than six digits (rows written by other programs) are padded, not misread.
_MICROS = (
    "(unixepoch(substr({v}, 1, 19)) * 1000000 "
    "+ CAST(substr(substr({v}, 21) || '000000', 1, 6) AS INTEGER))"
)
_ADD_SECONDS = (
    "(SELECT strftime('%Y-%m-%d %H:%M:%S', t / 1000000, 'unixepoch') "
    "|| printf('.%06d', t % 1000000) FROM (SELECT "
    + _MICROS.format(v="b")
    + " + CAST(round(s * 1000000) AS INTEGER) AS t FROM (SELECT ({ts}) AS b, ({secs}) AS s)))"
)
# `a` and `b` as above; the difference in seconds (a float), NULL if either is NULL.
_SECONDS_BETWEEN = (
    "(SELECT (" + _MICROS.format(v="a") + " - " + _MICROS.format(v="b") + ") / 1000000.0 "
    "FROM (SELECT ({later}) AS a, ({earlier}) AS b))"
)
_CALL = "pgqrs_add_seconds("
_BETWEEN_CALL = "pgqrs_seconds_between("
# Turso's planner prefers the consumer index over the primary key when a statement picks rows by
# a list of ids *and* by consumer, and then scans every row the consumer ever held (~5x slower
# at batch 10). A unary `+` keeps that comparison off the index, as in SQLite.
_BY_IDS = re.compile(r"\bWHERE id IN_LIST\(")
_CONSUMER = re.compile(r"\bAND consumer_worker_id =")


def spell(text: str) -> str:
    """A statement in SQLite's spelling (before `IN_LIST` is expanded) as Turso needs it."""
    if _CALL in text:
        text = inline_add_seconds(text)
    if _BETWEEN_CALL in text:
        text = inline_seconds_between(text)
    if _BY_IDS.search(text):
        text = _CONSUMER.sub("AND +consumer_worker_id =", text)
    return text


def inline_add_seconds(text: str) -> str:
    """`text` with every `pgqrs_add_seconds(a, b)` replaced by its plain-SQL form."""
    while (start := text.find(_CALL)) >= 0:
        args, end = _arguments(text, start + len(_CALL))
        if len(args) != 2:
            raise ValueError(f"pgqrs_add_seconds takes 2 arguments, got {len(args)}: {text}")
        text = text[:start] + _ADD_SECONDS.format(ts=args[0], secs=args[1]) + text[end:]
    return text


def inline_seconds_between(text: str) -> str:
    """`text` with every `pgqrs_seconds_between(a, b)` replaced by its plain-SQL form."""
    while (start := text.find(_BETWEEN_CALL)) >= 0:
        args, end = _arguments(text, start + len(_BETWEEN_CALL))
        if len(args) != 2:
            raise ValueError(f"pgqrs_seconds_between takes 2 arguments, got {len(args)}: {text}")
        replaced = _SECONDS_BETWEEN.format(later=args[0], earlier=args[1])
        text = text[:start] + replaced + text[end:]
    return text


def _arguments(text: str, pos: int) -> tuple[list[str], int]:
    """The comma-separated arguments of a call whose `(` ends just before `pos`, and the
    index after its `)`. Nested parentheses and quoted strings are skipped."""
    depth, quote, args, begin = 0, "", [], pos
    for i in range(pos, len(text)):
        ch = text[i]
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")" and depth:
            depth -= 1
        elif ch == ")" or (ch == "," and not depth):
            args.append(text[begin:i].strip())
            begin = i + 1
            if ch == ")":
                return args, i + 1
    raise ValueError(f"unbalanced pgqrs_add_seconds call: {text}")
