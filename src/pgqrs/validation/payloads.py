"""Payload rules and their order (semantics.md §8.1-8.2), a queue's own payload limits
(semantics.md §7.6), and the payload lists producers take."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeAlias

from ..errors import ValidationError
from .encoding import encode

# --------------------------------------------------------------------------------------------
# Payload rules (semantics.md §8.1-8.2)


class PayloadSettings(Protocol):
    """The fields of `pgqrs.Config` that payload rules come from."""

    @property
    def max_payload_size_bytes(self) -> int: ...
    @property
    def max_string_length(self) -> int: ...
    @property
    def max_object_depth(self) -> int: ...
    @property
    def forbidden_keys(self) -> Sequence[str]: ...
    @property
    def required_keys(self) -> Sequence[str]: ...


class QueueLimits(Protocol):
    """A queue's own payload limits (`pgqrs.QueueSettings`); None: the producer's Config."""

    @property
    def queue_name(self) -> str: ...
    @property
    def max_payload_size_bytes(self) -> int | None: ...
    @property
    def max_string_length(self) -> int | None: ...
    @property
    def max_object_depth(self) -> int | None: ...


# The limits a queue may set for itself (semantics.md §7.6): name -> (least value, CLI option).
# The ranges are Config's; the most is what the INTEGER column holds.
QUEUE_LIMITS: dict[str, tuple[int, str]] = {
    "max_payload_size_bytes": (1, "--max-payload-bytes"),
    "max_string_length": (1, "--max-string-length"),
    "max_object_depth": (0, "--max-depth"),
}
MAX_QUEUE_LIMIT = 2**31 - 1


@dataclass(frozen=True, slots=True)
class LimitOrigin:
    """Where a producer's limits come from, for the message of a refusal: the queue it writes
    to, and which of the queue's limits are the queue's own (the others are Config's)."""

    queue: str
    from_queue: frozenset[str] = frozenset()

    def explain(self, limit: str, value: int) -> str:
        """` (<limit> = <value> from <where>; how to change it)`, appended to a refusal."""
        option = QUEUE_LIMITS[limit][1]
        per_queue = (
            f'Admin.update_queue("{self.queue}", {limit}=N) or '
            f"`pgqrs queue update {self.queue} {option} N`"
        )
        if limit in self.from_queue:
            return f" ({limit} = {value} set on queue '{self.queue}'; change it with {per_queue})"
        default = ", pgqrs's default" if getattr(_PGQRS_DEFAULTS, limit) == value else ""
        return (
            f" ({limit} = {value} from this process's Config{default}; change it for queue "
            f"'{self.queue}' with {per_queue}, or for this process with Config.{limit})"
        )


@dataclass(frozen=True, slots=True)
class PayloadRules:
    """The payload limits a producer applies, frozen so it sees one consistent set: its store's
    Config, with the limits of its queue in their place where the queue has its own."""

    max_payload_size_bytes: int = 1048576
    max_string_length: int = 1024
    max_object_depth: int = 5
    forbidden_keys: tuple[str, ...] = ("__proto__", "constructor")
    required_keys: tuple[str, ...] = ()
    # Where the limits come from (None: say nothing about it, as pgqrs's messages do).
    origin: LimitOrigin | None = field(default=None, compare=False)
    # Built once: membership is tested for every key of every payload.
    _forbidden: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "forbidden_keys", tuple(self.forbidden_keys))
        object.__setattr__(self, "required_keys", tuple(self.required_keys))
        object.__setattr__(self, "_forbidden", frozenset(self.forbidden_keys))

    @classmethod
    def from_config(cls, config: PayloadSettings) -> PayloadRules:
        return cls(
            max_payload_size_bytes=config.max_payload_size_bytes,
            max_string_length=config.max_string_length,
            max_object_depth=config.max_object_depth,
            forbidden_keys=tuple(config.forbidden_keys),
            required_keys=tuple(config.required_keys),
        )

    @classmethod
    def for_queue(cls, config: PayloadSettings, queue: QueueLimits) -> PayloadRules:
        """The rules of a producer of `queue`: each limit the queue's own, else Config's."""
        own = {name: getattr(queue, name) for name in QUEUE_LIMITS}
        limits = {
            name: getattr(config, name) if value is None else value for name, value in own.items()
        }
        return cls(
            **limits,
            forbidden_keys=tuple(config.forbidden_keys),
            required_keys=tuple(config.required_keys),
            origin=LimitOrigin(
                queue.queue_name, frozenset(n for n, v in own.items() if v is not None)
            ),
        )

    def explain(self, limit: str) -> str:
        """What a refusal by `limit` adds to pgqrs's message: where the value comes from."""
        return "" if self.origin is None else self.origin.explain(limit, getattr(self, limit))


# The defaults above are pgqrs's (api.md §2.1); a refusal under one of them says so.
_PGQRS_DEFAULTS = PayloadRules()


def check_queue_limits(limits: Mapping[str, object]) -> dict[str, int | None]:
    """A queue's payload limits as given to create_queue / update_queue (None: Config's), each
    checked against Config's range (semantics.md §7.6) before anything is written."""
    checked: dict[str, int | None] = {}
    for name, value in limits.items():
        least = QUEUE_LIMITS[name][0]
        if value is None:
            checked[name] = None
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int or None, not {type(value).__name__}")
        if not least <= value <= MAX_QUEUE_LIMIT:
            raise ValidationError(
                f"Validation failed: {name} must be between {least} and {MAX_QUEUE_LIMIT}, "
                f"got {value}"
            )
        checked[name] = int(value)
    return checked


# A path is built only when a message needs it: (parent path, `.key` or `[i]` segment), None = `$`.
_Path: TypeAlias = "tuple[_Path, str] | None"


# A value still to visit: (value, depth, parent path, segment, key when an object member).
_Entry: TypeAlias = "tuple[object, int, _Path, str, str | None]"


def _format_path(path: _Path) -> str:
    segments: list[str] = []
    while path is not None:
        path, segment = path
        segments.append(segment)
    return "$" + "".join(reversed(segments))


def _json_key(key: object) -> str:
    """A dict key as the JSON text has it (json.dumps converts these; anything else failed)."""
    if isinstance(key, str):
        # json writes a subclass's plain text; compare that, not a possibly redefined __eq__.
        return key if type(key) is str else str.__str__(key)
    if isinstance(key, float):
        return float.__repr__(key)
    if key is True:
        return "true"
    if key is False:
        return "false"
    if key is None:
        return "null"
    if isinstance(key, int):
        return int.__repr__(key)
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")


def _utf8_length_over(text: str, limit: int) -> int | None:
    """The UTF-8 length of `text` if it exceeds `limit`, else None (cheaply, for short text)."""
    # A code point is at most 4 bytes, so most strings need no encoding at all.
    if len(text) * 4 <= limit:
        return None
    size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
    return size if size > limit else None


# Values of a flat object that no rule but the string length can break.
_SCALARS = frozenset({str, int, float, bool, type(None)})


def _flat_and_short(payload: dict[object, object], rules: PayloadRules) -> bool:
    """True when `payload` is an object of plain text keys and scalar values whose every string
    is short enough not to need measuring, and such an object may be this deep: then only the
    required keys are left to check. False says nothing (the full walk decides)."""
    if rules.max_object_depth < 1:
        return False
    most = rules.max_string_length // 4  # characters that cannot exceed the limit in UTF-8
    forbidden = rules._forbidden
    for key, value in payload.items():
        if type(key) is not str or len(key) > most or key in forbidden:
            return False
        kind = type(value)
        if kind not in _SCALARS or (kind is str and len(value) > most):  # type: ignore[arg-type]
            return False
    return True


def _missing_required(payload: object, rules: PayloadRules) -> str | None:
    if rules.required_keys and isinstance(payload, dict):
        present = {_json_key(k) for k in payload}
        for required in rules.required_keys:
            if required not in present:
                return f"Required key '{required}' missing from payload"
    return None


def _structure_error(payload: object, rules: PayloadRules) -> str | None:
    """The first rule `payload` breaks, depth-first in document order, or None.

    Walks the value as its JSON text reads (tuples are arrays, keys are converted), with an
    explicit stack so that payloads json accepted never hit the recursion limit here. The
    common flat object is vouched for without the walk (`_flat_and_short`).
    """
    if type(payload) is dict and _flat_and_short(payload, rules):
        return _missing_required(payload, rules)
    max_depth = rules.max_object_depth
    limit = rules.max_string_length
    forbidden = rules._forbidden
    # A member's key is checked when the member is popped: after earlier members' subtrees and
    # before its own value, which is document order.
    stack: list[_Entry] = [(payload, 0, None, "", None)]
    while stack:
        value, depth, parent, segment, key = stack.pop()
        if key is not None:
            if key in forbidden:
                return f"Forbidden key '{key}' found in payload at {_format_path(parent)}"
            size = _utf8_length_over(key, limit)
            if size is not None:
                return (
                    f"Key '{key[:64]}' length {size} exceeds limit {limit} "
                    f"at {_format_path(parent)}{rules.explain('max_string_length')}"
                )
        if depth > max_depth:
            where = _format_path((parent, segment) if segment else None)
            return (
                f"Object depth {depth} exceeds limit {max_depth} at {where}"
                f"{rules.explain('max_object_depth')}"
            )
        if isinstance(value, str):
            size = _utf8_length_over(value, limit)
            if size is not None:
                where = _format_path((parent, segment) if segment else None)
                return (
                    f"String length {size} exceeds limit {limit} at {where}"
                    f"{rules.explain('max_string_length')}"
                )
            continue
        # Only the root has no segment; its path is `$`.
        path: _Path = (parent, segment) if segment else None
        if isinstance(value, dict):
            members: list[_Entry] = []
            for raw_key, child in value.items():
                name = _json_key(raw_key)
                members.append((child, depth + 1, path, "." + name, name))
            stack.extend(reversed(members))
        elif isinstance(value, list | tuple):
            stack.extend(
                (value[i], depth + 1, path, f"[{i}]", None) for i in reversed(range(len(value)))
            )
    return _missing_required(payload, rules)


def encode_payloads(payloads: Sequence[object], rules: PayloadRules, *, batch: bool) -> list[str]:
    """The stored texts of `payloads`, after every check of semantics.md §8.1, in the §8.2 order.

    All payloads pass one stage before any is checked by the next, so a batch reports a
    serialization error ahead of a size error wherever the two sit. `batch` selects the size
    message; the `Payload at index i: ` prefix appears only when there is more than one payload.
    """

    def where(index: int) -> str:
        return f"Payload at index {index}: " if len(payloads) > 1 else ""

    encoded = [encode(payload, where(index)) for index, payload in enumerate(payloads)]
    for index, payload in enumerate(payloads):
        reason = _structure_error(payload, rules)
        if reason is not None:
            raise ValidationError(f"Validation failed: {where(index)}{reason}")
    limit = rules.max_payload_size_bytes
    for index, (_, size) in enumerate(encoded):
        if size > limit:
            why = rules.explain("max_payload_size_bytes")
            if batch:
                raise ValidationError(
                    f"Validation failed: Payload at index {index} too large: "
                    f"{size} bytes exceeds limit {limit}{why}"
                )
            raise ValidationError(f"Payload size {size} exceeds limit {limit}{why}")
    return [text for text, _ in encoded]


# --------------------------------------------------------------------------------------------
# The lists producers take


def check_payload_list(payloads: object) -> list[Any] | tuple[Any, ...]:
    """`enqueue_batch(payloads)`: a list (or tuple) of payloads; an empty one enqueues nothing."""
    if not isinstance(payloads, (list, tuple)):
        raise TypeError(f"enqueue_batch() needs a list of payloads, got {type(payloads)}")
    return payloads


def check_payloads_given(payloads: Sequence[object]) -> Sequence[object]:
    """`pgqrs.produce_batch(store, queue, payloads)`: at least one payload."""
    if not payloads:
        raise ValidationError("Validation failed: No messages to enqueue")
    return payloads
