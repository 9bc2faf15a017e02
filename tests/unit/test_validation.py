"""JSON encoding, payload rules and their order, names, and every check of a caller's argument
(semantics.md §4, §6, §8): each check accepts what it should, and refuses the rest with the error
type and message the API documents."""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Callable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pgqrs.config import Config
from pgqrs.errors import ConfigError, SerializationError, ValidationError
from pgqrs.validation import (
    MAX_DURATION_SECONDS,
    PayloadRules,
    check_batch_size,
    check_builder_batch,
    check_builder_poll_interval,
    check_builder_seconds,
    check_iterator_poll_interval,
    check_lease,
    check_payload_list,
    check_payloads_given,
    check_result_timeout,
    check_retry_after,
    check_some_builders,
    decode_json,
    encode_json,
    encode_payloads,
    require_callable,
    require_duration,
    require_int,
    require_str,
    require_type,
    require_type_or_none,
    require_workflow_name,
    validate_queue_name,
    validate_schema_name,
    validate_step_name,
    validate_worker_name,
)
from pgqrs.validation.payloads import _structure_error

DEFAULT = PayloadRules()
LONGEST = MAX_DURATION_SECONDS


def refusal(kind: type[Exception], call: Callable[[], object]) -> str:
    """The message of the error `call` raises, which must be exactly a `kind` (a subclass would
    change what callers catch)."""
    with pytest.raises(kind) as info:
        call()
    assert type(info.value) is kind
    return str(info.value)


def nest(levels: int, leaf: object = 1, key: str | None = None) -> object:
    """`leaf` inside `levels` containers: objects keyed a, b, c… (or `key`), else lists."""
    value = leaf
    for level in reversed(range(levels)):
        value = {key or "abcdefghij"[level]: value}
    return value


def nest_lists(levels: int, leaf: object = 1) -> object:
    value = leaf
    for _ in range(levels):
        value = [value]
    return value


def structure_message(payload: object, rules: PayloadRules = DEFAULT) -> str:
    with pytest.raises(ValidationError) as info:
        encode_payloads([payload], rules, batch=False)
    return str(info.value)


def ok(payloads: Sequence[object], rules: PayloadRules = DEFAULT, batch: bool = False) -> list[str]:
    return encode_payloads(payloads, rules, batch=batch)


# --- JSON -------------------------------------------------------------------------------------


def test_encode_json_is_compact_and_keeps_unicode() -> None:
    assert encode_json({"a": [1, 2.5, None, True], "é": "ü"}) == '{"a":[1,2.5,null,true],"é":"ü"}'
    assert encode_json((1, (2,))) == "[1,[2]]"
    assert encode_json({2: "a", 1.5: "b", True: "c", None: "d"}) == (
        '{"2":"a","1.5":"b","true":"c","null":"d"}'
    )


def test_decode_json_roundtrip() -> None:
    value = {"a": [1, 2.5, None, True, "x"], "b": {}}
    assert decode_json(encode_json(value)) == value


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@given(
    value=_JSON_VALUES,
    indent=st.sampled_from([None, 1]),
    before=st.sampled_from(["", " ", "\n\t"]),
    after=st.sampled_from(["", " ", "\n", " x", "}", ",1"]),
)
def test_decode_json_is_json_loads(
    value: object, indent: int | None, before: str, after: str
) -> None:
    """The scanner shortcut reads every text exactly as json.loads does, errors included
    (stores give back compact text; other text takes the general path)."""
    text = before + json.dumps(value, indent=indent) + after
    try:
        expected: object = json.loads(text)
    except json.JSONDecodeError as err:
        error = str(err)
    else:
        assert decode_json(text) == expected
        return
    with pytest.raises(json.JSONDecodeError) as raised:
        decode_json(text)
    assert str(raised.value) == error


def _circular() -> object:
    items: list[object] = []
    items.append(items)
    return items


@pytest.mark.parametrize(
    ("value", "detail"),
    [
        ({1, 2}, "Object of type set is not JSON serializable"),
        (object(), "Object of type object is not JSON serializable"),
        (b"bytes", "Object of type bytes is not JSON serializable"),
        (math.nan, "Out of range float values are not JSON compliant"),
        ({"a": [math.inf]}, "Out of range float values are not JSON compliant"),
        (-math.inf, "Out of range float values are not JSON compliant"),
        ({(1, 2): 3}, "keys must be str, int, float, bool or None, not tuple"),
        (_circular(), "Circular reference detected"),
    ],
)
def test_encode_json_failures(value: object, detail: str) -> None:
    with pytest.raises(SerializationError) as info:
        encode_json(value)
    assert str(info.value).startswith(f"Serialization error: {detail}")
    assert info.value.__cause__ is not None
    # Still catchable as the builtins pgqrs raised.
    assert isinstance(info.value, TypeError)
    assert isinstance(info.value, ValueError)


def test_encode_json_rejects_what_utf8_cannot_hold() -> None:
    with pytest.raises(SerializationError, match="cannot be encoded as UTF-8"):
        encode_json({"a": "\ud800"})


def test_encode_json_rejects_giant_and_bottomless_values() -> None:
    with pytest.raises(SerializationError):
        encode_json(10**5000)
    with pytest.raises(SerializationError):
        encode_json(nest_lists(100_000))


# --- payload rules -----------------------------------------------------------------------------


def test_rules_from_config() -> None:
    config = Config(
        "sqlite::memory:",
        max_payload_size_bytes=10,
        max_string_length=3,
        max_object_depth=0,
        forbidden_keys=["x"],
        required_keys=["y"],
    )
    assert PayloadRules.from_config(config) == PayloadRules(10, 3, 0, ("x",), ("y",))
    assert PayloadRules.from_config(Config("sqlite::memory:")) == DEFAULT


def test_rules_are_hashable_and_coerce_lists() -> None:
    rules = PayloadRules(forbidden_keys=["a"], required_keys=["b"])  # type: ignore[arg-type]
    assert rules.forbidden_keys == ("a",)
    assert rules.required_keys == ("b",)
    assert hash(rules) == hash(PayloadRules(forbidden_keys=("a",), required_keys=("b",)))


def test_encode_payloads_returns_stored_texts() -> None:
    assert ok([{"a": 1}, (1, 2), "é", None], batch=True) == ['{"a":1}', "[1,2]", '"é"', "null"]
    assert ok([], batch=True) == []


def test_depth_five_containers_pass_six_fail() -> None:
    ok([nest(5)])
    ok([nest_lists(5)])
    assert structure_message(nest(6)) == (
        "Validation failed: Object depth 6 exceeds limit 5 at $.a.b.c.d.e.f"
    )
    assert structure_message(nest_lists(6)) == (
        "Validation failed: Object depth 6 exceeds limit 5 at $[0][0][0][0][0][0]"
    )


def test_depth_counts_values_not_only_scalars() -> None:
    ok([nest_lists(5, [])])  # six lists; the innermost, empty, sits at depth 5
    assert structure_message(nest_lists(6, [])) == (
        "Validation failed: Object depth 6 exceeds limit 5 at $[0][0][0][0][0][0]"
    )


def test_depth_zero_allows_only_flat_values() -> None:
    rules = PayloadRules(max_object_depth=0)
    ok(["scalar", {}, []], rules)
    assert structure_message({"a": 1}, rules) == (
        "Validation failed: Object depth 1 exceeds limit 0 at $.a"
    )
    assert (
        structure_message([1], rules) == "Validation failed: Object depth 1 exceeds limit 0 at $[0]"
    )


def test_mixed_paths() -> None:
    payload = {"a": [0, 1, {"b": "x" * 1025}]}
    assert structure_message(payload) == (
        "Validation failed: String length 1025 exceeds limit 1024 at $.a[2].b"
    )


def test_forbidden_key_reports_the_object_path() -> None:
    assert structure_message({"__proto__": 1}) == (
        "Validation failed: Forbidden key '__proto__' found in payload at $"
    )
    assert structure_message({"a": [{"constructor": {}}]}) == (
        "Validation failed: Forbidden key 'constructor' found in payload at $.a[0]"
    )
    # Exact match only.
    ok([{"Constructor": 1, "__proto__x": 2}])
    # Custom lists replace the defaults.
    ok([{"__proto__": 1}], PayloadRules(forbidden_keys=()))
    assert structure_message({"ok": {"secret": 1}}, PayloadRules(forbidden_keys=("secret",))) == (
        "Validation failed: Forbidden key 'secret' found in payload at $.ok"
    )


def test_keys_are_checked_as_json_sees_them() -> None:
    rules = PayloadRules(forbidden_keys=("1", "true", "null", "1.5"))
    for key in (1, True, None, 1.5):
        message = structure_message({key: 0}, rules)
        assert (
            message == f"Validation failed: Forbidden key '{json.dumps(key)}' found in payload at $"
        )

    class Color(enum.StrEnum):
        RED = "constructor"

    assert structure_message({Color.RED: 1}) == (
        "Validation failed: Forbidden key 'constructor' found in payload at $"
    )


def test_key_length_uses_first_64_chars_and_utf8_bytes() -> None:
    rules = PayloadRules(max_string_length=100)
    long_key = "k" * 64 + "TAIL" + "k" * 40
    assert structure_message({"a": {long_key: 1}}, rules) == (
        f"Validation failed: Key '{'k' * 64}' length 108 exceeds limit 100 at $.a"
    )
    ok([{"é" * 50: 1}], rules)  # 100 bytes
    assert structure_message({"é" * 51: 1}, rules) == (
        f"Validation failed: Key '{'é' * 51}' length 102 exceeds limit 100 at $"
    )


@pytest.mark.parametrize(
    ("text", "size"),
    [("x" * 1025, 1025), ("é" * 513, 1026), ("€" * 342, 1026), ("😀" * 257, 1028)],
)
def test_string_length_is_utf8_bytes(text: str, size: int) -> None:
    assert structure_message({"s": text}) == (
        f"Validation failed: String length {size} exceeds limit 1024 at $.s"
    )


def test_strings_exactly_at_the_limit_pass() -> None:
    ok([{"s": "x" * 1024}, {"s": "é" * 512}, {"s": "😀" * 256}, "x" * 1024], batch=True)
    assert structure_message("x" * 1025) == (
        "Validation failed: String length 1025 exceeds limit 1024 at $"
    )


def test_violations_are_reported_in_document_order() -> None:
    # A nested forbidden key comes before a later top-level one.
    assert structure_message({"a": {"__proto__": 1}, "constructor": 2}) == (
        "Validation failed: Forbidden key '__proto__' found in payload at $.a"
    )
    # An earlier long string comes before a later forbidden key.
    assert structure_message({"a": "x" * 2000, "constructor": 1}) == (
        "Validation failed: String length 2000 exceeds limit 1024 at $.a"
    )
    # A key is checked before its own value, forbidden before long.
    assert structure_message({"constructor": "x" * 2000}) == (
        "Validation failed: Forbidden key 'constructor' found in payload at $"
    )
    long_key = "k" * 2000
    rules = PayloadRules(forbidden_keys=(long_key,))
    assert structure_message({long_key: 1}, rules).startswith("Validation failed: Forbidden key")
    # Array elements in index order.
    assert structure_message(["ok", ["x" * 1025], "y" * 2000]).endswith("at $[1][0]")
    # A deep value is reported before a later long string, and its contents are not inspected.
    assert structure_message([nest(6, "x" * 5000), "y" * 2000]) == (
        "Validation failed: Object depth 6 exceeds limit 5 at $[0].a.b.c.d.e"
    )


def test_required_keys() -> None:
    rules = PayloadRules(required_keys=("id", "type"))
    ok([{"id": 1, "type": "t", "extra": 2}], rules)
    assert structure_message({"id": 1}, rules) == (
        "Validation failed: Required key 'type' missing from payload"
    )
    assert (
        structure_message({}, rules) == "Validation failed: Required key 'id' missing from payload"
    )
    # Only top-level objects are checked.
    ok([[1, 2], "text", 5, None, [{"x": 1}]], rules)
    # Converted keys count.
    ok([{1: "a"}], PayloadRules(required_keys=("1",)))
    # The walk's violations come first.
    assert structure_message({"constructor": 1}, rules).startswith("Validation failed: Forbidden")


def test_size_limit_single_and_batch() -> None:
    rules = PayloadRules(max_payload_size_bytes=10)
    ok(["x" * 8], rules)  # '"xxxxxxxx"' is exactly 10 bytes
    ok(["é" * 4], rules)  # 2 quotes + 8 bytes
    ok([{"a": 12}], rules)  # compact: '{"a":12}' is 8 bytes
    with pytest.raises(ValidationError) as info:
        encode_payloads(["x" * 9], rules, batch=False)
    assert str(info.value) == "Payload size 11 exceeds limit 10"
    with pytest.raises(ValidationError) as info:
        encode_payloads(["é" * 5], rules, batch=False)
    assert str(info.value) == "Payload size 12 exceeds limit 10"
    with pytest.raises(ValidationError) as info:
        encode_payloads(["x" * 9], rules, batch=True)
    assert (
        str(info.value)
        == "Validation failed: Payload at index 0 too large: 11 bytes exceeds limit 10"
    )
    with pytest.raises(ValidationError) as info:
        encode_payloads(["ok", "x" * 9, "y" * 20], rules, batch=True)
    assert (
        str(info.value)
        == "Validation failed: Payload at index 1 too large: 11 bytes exceeds limit 10"
    )


def test_batch_prefix_only_with_more_than_one_payload() -> None:
    with pytest.raises(ValidationError) as info:
        encode_payloads([{"constructor": 1}], DEFAULT, batch=True)
    assert str(info.value) == "Validation failed: Forbidden key 'constructor' found in payload at $"
    with pytest.raises(ValidationError) as info:
        encode_payloads([{"a": 1}, {"constructor": 1}], DEFAULT, batch=True)
    assert str(info.value) == (
        "Validation failed: Payload at index 1: Forbidden key 'constructor' found in payload at $"
    )
    with pytest.raises(ValidationError) as info:
        encode_payloads([1, 2, nest(6)], DEFAULT, batch=True)
    assert str(info.value) == (
        "Validation failed: Payload at index 2: Object depth 6 exceeds limit 5 at $.a.b.c.d.e.f"
    )


def test_serialization_errors_in_a_batch_name_the_payload() -> None:
    with pytest.raises(SerializationError) as info:
        encode_payloads([1, {2}], DEFAULT, batch=True)
    assert str(info.value) == (
        "Serialization error: Payload at index 1: Object of type set is not JSON serializable"
    )
    assert isinstance(info.value.__cause__, TypeError)
    with pytest.raises(SerializationError) as info:
        encode_payloads([{2}], DEFAULT, batch=True)
    assert str(info.value) == "Serialization error: Object of type set is not JSON serializable"


def test_order_encoding_then_structure_then_size() -> None:
    small = PayloadRules(max_payload_size_bytes=10)
    too_large = "x" * 100
    # Payload 0 too large, payload 1 not JSON: the serialization error wins.
    with pytest.raises(SerializationError):
        encode_payloads([too_large, {1, 2}], small, batch=True)
    # Payload 0 too large, payload 1 breaks a structural rule: the structural error wins.
    with pytest.raises(ValidationError) as info:
        encode_payloads([too_large, {"constructor": 1}], small, batch=True)
    assert "Forbidden key" in str(info.value)
    # Payload 0 structurally bad, payload 1 not JSON: encoding is checked for all first.
    with pytest.raises(SerializationError):
        encode_payloads([{"constructor": 1}, math.nan], small, batch=True)
    # Structure is checked for every payload before any size.
    with pytest.raises(ValidationError) as info:
        encode_payloads(["x" * 9, "y" * 2000], PayloadRules(max_payload_size_bytes=10), batch=True)
    assert "String length 2000" in str(info.value)


def test_walk_handles_wide_and_deep_payloads() -> None:
    rules = PayloadRules(max_object_depth=900, max_string_length=10)
    ok([nest_lists(900)], rules)
    assert structure_message(nest_lists(901), rules).startswith(
        "Validation failed: Object depth 901 exceeds limit 900"
    )
    wide = {f"k{i}": list(range(50)) for i in range(200)}
    ok([wide])


# --- payload lists -----------------------------------------------------------------------------


def test_check_payload_list_accepts_lists_and_tuples() -> None:
    payloads: list[object] = [1, {"a": 2}]
    assert check_payload_list(payloads) is payloads
    assert check_payload_list((1,)) == (1,)
    assert check_payload_list([]) == []


@pytest.mark.parametrize(
    ("payloads", "shown"),
    [("ab", "<class 'str'>"), ({1}, "<class 'set'>"), (None, "<class 'NoneType'>")],
)
def test_check_payload_list_refuses_anything_else(payloads: object, shown: str) -> None:
    message = refusal(TypeError, lambda: check_payload_list(payloads))
    assert message == f"enqueue_batch() needs a list of payloads, got {shown}"


def test_check_payloads_given() -> None:
    assert check_payloads_given([None]) == [None]
    message = refusal(ValidationError, lambda: check_payloads_given([]))
    assert message == "Validation failed: No messages to enqueue"


# --- names -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["q", "orders", "A-z_0.9:x", "x" * 255, "a.b:c-d_e"])
def test_valid_queue_names(name: str) -> None:
    assert validate_queue_name(name) == name
    assert validate_queue_name(name, "workflow") == name


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "Validation failed: invalid queue name '': must be 1-255 characters (got 0)"),
        (
            "x" * 256,
            f"Validation failed: invalid queue name '{'x' * 64}…': "
            "must be 1-255 characters (got 256)",
        ),
        (
            "my queue",
            "Validation failed: invalid queue name 'my queue': contains ' ' "
            "(allowed: ASCII letters, digits, _ . : -)",
        ),
        (
            "a/b",
            "Validation failed: invalid queue name 'a/b': contains '/' "
            "(allowed: ASCII letters, digits, _ . : -)",
        ),
        (
            "café",
            "Validation failed: invalid queue name 'café': contains 'é' "
            "(allowed: ASCII letters, digits, _ . : -)",
        ),
        (
            "a\nb",
            "Validation failed: invalid queue name 'a\\nb': contains '\\n' "
            "(allowed: ASCII letters, digits, _ . : -)",
        ),
    ],
)
def test_invalid_queue_names(name: str, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        validate_queue_name(name)
    assert str(info.value) == message


def test_workflow_kind_in_message() -> None:
    with pytest.raises(ValidationError, match=r"^Validation failed: invalid workflow name 'a b': "):
        validate_queue_name("a b", "workflow")


@pytest.mark.parametrize(
    ("validate", "what"),
    [
        (validate_queue_name, "queue name"),
        (lambda name: validate_queue_name(name, "workflow"), "workflow name"),
        (validate_worker_name, "worker name"),
        (validate_schema_name, "schema"),
        (validate_step_name, "step name"),
        (require_workflow_name, "workflow name"),
    ],
)
@pytest.mark.parametrize(("bad", "kind"), [(None, "NoneType"), (b"q", "bytes"), (["q"], "list")])
def test_non_str_names_are_type_errors(
    validate: Callable[[object], str], what: str, bad: object, kind: str
) -> None:
    assert refusal(TypeError, lambda: validate(bad)) == f"{what} must be a str, not {kind}"


@pytest.mark.parametrize("name", ["w", "worker-1", "my worker", "x" * 255, "__ephemera", "é"])
def test_valid_worker_names(name: str) -> None:
    assert validate_worker_name(name) == name


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "must be 1-255 characters (got 0)"),
        ("x" * 256, "must be 1-255 characters (got 256)"),
        (" w", "must not start or end with whitespace"),
        ("w ", "must not start or end with whitespace"),
        ("\tw", "must not start or end with whitespace"),
        ("   ", "must not start or end with whitespace"),
        (
            "__ephemeral__abc",
            "must not start with '__ephemeral__' (reserved for ephemeral workers)",
        ),
    ],
)
def test_invalid_worker_names(name: str, reason: str) -> None:
    with pytest.raises(ValidationError) as info:
        validate_worker_name(name)
    assert str(info.value).startswith("Validation failed: invalid worker name '")
    assert str(info.value).endswith(f"': {reason}")


@pytest.mark.parametrize("name", ["public", "_x", "a$1", "A" * 63, "pgqrs_test_1"])
def test_valid_schema_names(name: str) -> None:
    assert validate_schema_name(name) == name


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "'' must be 1-63 characters (got 0)"),
        ("a" * 64, f"'{'a' * 64}' must be 1-63 characters (got 64)"),
        ("1abc", "'1abc' must start with an ASCII letter or '_', not '1'"),
        ("$abc", "'$abc' must start with an ASCII letter or '_', not '$'"),
        ("éa", "'éa' must start with an ASCII letter or '_', not 'é'"),
        ("my-schema", "'my-schema' contains '-' (allowed: ASCII letters, digits, _ $)"),
        ('a"b', "'a\"b' contains '\"' (allowed: ASCII letters, digits, _ $)"),
        ("a b", "'a b' contains ' ' (allowed: ASCII letters, digits, _ $)"),
    ],
)
def test_invalid_schema_names(name: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate_schema_name(name)
    assert str(info.value) == f"Invalid configuration value for schema: {reason}"


@pytest.mark.parametrize("name", ["s", "fetch user", "é", "x" * 255, "__pgqrs_sleep__#1"])
def test_valid_step_names(name: str) -> None:
    assert validate_step_name(name) == name


@pytest.mark.parametrize(("name", "length"), [("", 0), ("x" * 256, 256)])
def test_invalid_step_names(name: str, length: int) -> None:
    message = refusal(ValidationError, lambda: validate_step_name(name))
    assert message == f"Validation failed: step name must be 1-255 characters (got {length})"


def test_workflow_decorator_names() -> None:
    # Only emptiness is refused here; the queue-name rules apply when the definition is created.
    assert require_workflow_name("orders") == "orders"
    assert require_workflow_name("not a queue name") == "not a queue name"
    assert refusal(ValueError, lambda: require_workflow_name("")) == (
        "workflow name must not be empty"
    )


# --- argument types ----------------------------------------------------------------------------


class _Base:
    pass


class _Derived(_Base):
    pass


def test_require_str() -> None:
    assert require_str("pause message", "") == ""
    assert require_str("pause message", "x") == "x"
    assert refusal(TypeError, lambda: require_str("pause message", 1)) == (
        "pause message must be a str, not int"
    )
    assert refusal(TypeError, lambda: require_str("fail_transient code", None)) == (
        "fail_transient code must be a str, not NoneType"
    )


def test_require_type() -> None:
    value = _Derived()
    assert require_type(value, _Base, "unused") is value
    assert require_type("q", str, "unused") == "q"
    by_name = "run() needs a pgqrs.Run, got {type.__name__}"
    assert refusal(TypeError, lambda: require_type(_Base(), _Derived, by_name)) == (
        "run() needs a pgqrs.Run, got _Base"
    )
    assert refusal(TypeError, lambda: require_type(None, _Base, by_name)) == (
        "run() needs a pgqrs.Run, got NoneType"
    )
    by_class = "retry must be a pgqrs.StepRetryPolicy or None, not {type}"
    assert refusal(TypeError, lambda: require_type(3, _Base, by_class)) == (
        "retry must be a pgqrs.StepRetryPolicy or None, not <class 'int'>"
    )


def test_require_type_or_none() -> None:
    value = _Base()
    message = "backoff must be a BackoffStrategy, not {type.__name__}"
    assert require_type_or_none(None, _Base, message) is None
    assert require_type_or_none(value, _Base, message) is value
    assert refusal(TypeError, lambda: require_type_or_none("fixed", _Base, message)) == (
        "backoff must be a BackoffStrategy, not str"
    )


def test_require_callable() -> None:
    def handler() -> None:
        pass

    message = "handler must be callable, got {type.__name__}"
    assert require_callable(handler, message) is handler
    assert require_callable(_Base, message) is _Base
    assert refusal(TypeError, lambda: require_callable("print", message)) == (
        "handler must be callable, got str"
    )
    assert refusal(
        TypeError, lambda: require_callable(None, "@step decorates a function, not {type.__name__}")
    ) == ("@step decorates a function, not NoneType")


# --- numbers and durations ---------------------------------------------------------------------


def test_require_int() -> None:
    assert require_int("n", 5) == 5
    assert require_int("n", 0, 0) == 0
    with pytest.raises(ValueError, match=r"^n must be >= 1, got 0$"):
        require_int("n", 0, 1)
    with pytest.raises(TypeError, match=r"^n must be an int, not bool$"):
        require_int("n", True, 0)
    with pytest.raises(TypeError, match=r"^n must be an int, not float$"):
        require_int("n", 1.0)


def test_require_duration() -> None:
    assert require_duration("s", 0) == 0.0
    assert require_duration("s", 1.5) == 1.5
    assert require_duration("s", LONGEST) == float(LONGEST)
    assert isinstance(require_duration("s", 2), float)
    for bad in (-0.1, -1, math.nan, math.inf, -math.inf):
        with pytest.raises(ValueError, match=r"^s must be a finite number >= 0"):
            require_duration("s", bad)
    for wrong in (True, "1", None):
        with pytest.raises(TypeError):
            require_duration("s", wrong)
    assert refusal(TypeError, lambda: require_duration("s", "1")) == "s must be a number, not str"
    assert refusal(ValueError, lambda: require_duration("s", -1)) == (
        "s must be a finite number >= 0, got -1"
    )
    assert refusal(ValueError, lambda: require_duration("s", LONGEST + 1)) == (
        f"s must be at most {LONGEST} seconds (about 136 years), got {LONGEST + 1}"
    )


def test_check_builder_seconds_accepts() -> None:
    assert check_builder_seconds("lease", 0.5, allow_zero=False) == 0.5
    assert check_builder_seconds("until", 0, allow_zero=True) == 0.0
    assert isinstance(check_builder_seconds("lease", 3, allow_zero=False), float)
    assert check_builder_seconds("lease", LONGEST, allow_zero=False) == float(LONGEST)


@pytest.mark.parametrize(
    ("call", "kind", "message"),
    [
        (
            lambda: check_builder_seconds("lease", 0, allow_zero=False),
            ValueError,
            "lease must be more than 0 seconds, got 0",
        ),
        (
            lambda: check_builder_seconds("lease", -1.5, allow_zero=False),
            ValueError,
            "lease must be more than 0 seconds, got -1.5",
        ),
        (
            lambda: check_builder_seconds("until", -1, allow_zero=True),
            ValueError,
            "until must be 0 or more seconds, got -1",
        ),
        (
            lambda: check_builder_seconds("until", math.nan, allow_zero=True),
            ValueError,
            "until must be 0 or more seconds, got nan",
        ),
        (
            lambda: check_builder_seconds("lease", math.inf, allow_zero=False),
            ValueError,
            "lease must be more than 0 seconds, got inf",
        ),
        (
            lambda: check_builder_seconds("lease", "5", allow_zero=False),
            TypeError,
            "lease must be a number of seconds, got str",
        ),
        (
            lambda: check_builder_seconds("until", True, allow_zero=True),
            TypeError,
            "until must be a number of seconds, got bool",
        ),
        (
            lambda: check_builder_seconds("lease", LONGEST + 1, allow_zero=False),
            ValueError,
            f"lease must be at most {LONGEST} seconds (about 136 years), got {LONGEST + 1}",
        ),
    ],
)
def test_check_builder_seconds_refuses(
    call: Callable[[], object], kind: type[Exception], message: str
) -> None:
    assert refusal(kind, call) == message


def test_check_lease() -> None:
    assert check_lease(1) == 1.0
    assert isinstance(check_lease(30), float)
    assert check_lease(1.5, "lease") == 1.5
    assert refusal(ValueError, lambda: check_lease(0.5)) == "vt must be at least 1 second, got 0.5"
    assert refusal(ValueError, lambda: check_lease(0)) == "vt must be at least 1 second, got 0"
    assert refusal(ValueError, lambda: check_lease(math.nan)) == (
        "vt must be at least 1 second, got nan"
    )
    assert refusal(TypeError, lambda: check_lease(None)) == (
        "vt must be a number of seconds, got NoneType"
    )
    assert refusal(TypeError, lambda: check_lease(False, "lease")) == (
        "lease must be a number of seconds, got bool"
    )
    assert refusal(ValueError, lambda: check_lease(LONGEST + 1)) == (
        f"vt must be at most {LONGEST} seconds (about 136 years), got {LONGEST + 1}"
    )


def test_check_retry_after() -> None:
    assert check_retry_after(None) is None
    assert check_retry_after(2.5) == 2.5
    given = check_retry_after(0)
    assert given == 0
    assert type(given) is int  # returned as given: the stored form splits it into secs/nanos
    assert check_retry_after(LONGEST) == LONGEST
    assert refusal(ValueError, lambda: check_retry_after(LONGEST + 1)) == (
        f"retry_after must be at most {LONGEST} seconds (about 136 years), got {LONGEST + 1}"
    )


@pytest.mark.parametrize("bad", [-1, -0.5, math.nan, math.inf, True, "1", [1]])
def test_check_retry_after_refuses(bad: object) -> None:
    assert refusal(ValueError, lambda: check_retry_after(bad)) == "Invalid retry_after"


def test_check_result_timeout() -> None:
    assert check_result_timeout(None) is None
    assert check_result_timeout(0) == 0
    assert check_result_timeout(1.5) == 1.5
    assert refusal(ValueError, lambda: check_result_timeout(-1)) == (
        "timeout must be a number of seconds >= 0, got -1"
    )
    assert refusal(ValueError, lambda: check_result_timeout(True)) == (
        "timeout must be a number of seconds >= 0, got True"
    )
    # Anything that cannot be compared with 0 fails as the comparison does.
    with pytest.raises(TypeError, match="'<' not supported"):
        check_result_timeout("5")


# --- batch sizes, intervals, collections -------------------------------------------------------


def test_check_batch_size() -> None:
    assert check_batch_size(1, 100) == 1
    assert check_batch_size(100, 100) == 100
    assert refusal(ValidationError, lambda: check_batch_size(101, 100)) == (
        "Validation failed: batch size 101 exceeds default_max_batch_size 100"
    )
    assert refusal(ValueError, lambda: check_batch_size(0, 100)) == (
        "batch_size must be >= 1, got 0"
    )
    assert refusal(ValueError, lambda: check_batch_size(-3, 100, "limit")) == (
        "limit must be >= 1, got -3"
    )
    assert refusal(TypeError, lambda: check_batch_size(True, 100, "--batch")) == (
        "--batch must be an int, not bool"
    )
    assert refusal(TypeError, lambda: check_batch_size(2.0, 100)) == (
        "batch_size must be an int, not float"
    )


def test_check_builder_batch() -> None:
    # Values below 1 pass: the builder raises them to 1.
    assert check_builder_batch(0) == 0
    assert check_builder_batch(25) == 25
    assert refusal(TypeError, lambda: check_builder_batch(True)) == "batch() needs an int, got bool"
    assert refusal(TypeError, lambda: check_builder_batch("5")) == "batch() needs an int, got str"


def test_check_builder_poll_interval() -> None:
    assert check_builder_poll_interval(1) == 1
    assert check_builder_poll_interval(250) == 250
    assert refusal(ValueError, lambda: check_builder_poll_interval(0)) == (
        "poll_interval() must be at least 1 ms, got 0"
    )
    assert refusal(TypeError, lambda: check_builder_poll_interval(0.5)) == (
        "poll_interval() needs milliseconds as an int, got 0.5"
    )
    assert refusal(TypeError, lambda: check_builder_poll_interval(True)) == (
        "poll_interval() needs milliseconds as an int, got True"
    )


def test_check_iterator_poll_interval() -> None:
    assert check_iterator_poll_interval(None) is None
    assert check_iterator_poll_interval(1) == 1
    assert refusal(ValueError, lambda: check_iterator_poll_interval(0)) == (
        "poll_interval_ms must be at least 1, got 0"
    )


def test_check_some_builders() -> None:
    builders = [object()]
    assert check_some_builders(builders) is builders
    assert refusal(ValueError, lambda: check_some_builders([])) == (
        "run_workers() needs at least one DequeueBuilder"
    )


# -- the flat-object shortcut of the structure check (issue 16) ------------------------------

_KEYS = st.one_of(st.sampled_from(["a", "__proto__", "constructor", "id"]), st.text(max_size=12))
_SCALAR_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=12)
)
_TEXTS = st.one_of(st.text(max_size=12), st.text(min_size=2, max_size=12).map(lambda t: t * 30))
_VALUES = st.one_of(
    _SCALAR_VALUES,
    _TEXTS,
    st.lists(_SCALAR_VALUES, max_size=2),
    st.dictionaries(st.text(max_size=3), _SCALAR_VALUES, max_size=2),
)


class _Walked(dict[object, object]):
    """A dict the shortcut does not take (it wants exactly `dict`), walked the same way."""


@settings(max_examples=300)
@given(
    payload=st.dictionaries(_KEYS, _VALUES, max_size=4),
    max_string_length=st.sampled_from([0, 1, 4, 9, 40, 1024]),
    max_object_depth=st.integers(0, 2),
    required=st.lists(st.sampled_from(["a", "id"]), max_size=2, unique=True),
)
def test_flat_shortcut_agrees_with_the_walk(
    payload: dict[str, object], max_string_length: int, max_object_depth: int, required: list[str]
) -> None:
    rules = PayloadRules(
        max_string_length=max_string_length,
        max_object_depth=max_object_depth,
        required_keys=tuple(required),
    )
    walked = _Walked(payload)
    assert _structure_error(payload, rules) == _structure_error(walked, rules)
