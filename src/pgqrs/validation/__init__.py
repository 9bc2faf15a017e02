"""Pure checks run before anything touches storage: every check of a caller's argument, JSON
encoding, payload rules, names.

No I/O here, so every rule is unit-testable and a rejected call provably writes nothing. One
module per concern:

    arguments   types, numbers and durations, batch sizes and intervals of arguments
    names       queue, workflow, worker, step and schema names (semantics.md §6)
    encoding    JSON text (semantics.md §4)
    enqueue     an enqueue's priority, deduplication keys and window (semantics.md §7.2, §7.8)
    limits      concurrency and rate limits of a queue or key, message keys (semantics.md §7.10)
    payloads    payload rules and their order (semantics.md §8.1-8.2), a queue's own
                payload limits (semantics.md §7.6), payload lists

Checks that need the database (a queue still holding messages, a duplicate worker name) are not
here: they are made by the statements themselves, in `pgqrs.tables`. The settings of a `Config`
are checked by its own field table, in `pgqrs.config`.
"""

from __future__ import annotations

from .arguments import (
    MAX_DURATION_SECONDS,
    check_batch_size,
    check_builder_batch,
    check_builder_poll_interval,
    check_builder_seconds,
    check_iterator_poll_interval,
    check_lease,
    check_result_timeout,
    check_retry_after,
    check_some_builders,
    require_callable,
    require_duration,
    require_int,
    require_str,
    require_type,
    require_type_or_none,
)
from .encoding import decode_json, encode_json
from .enqueue import (
    MAX_DEDUP_KEY_LENGTH,
    MAX_PRIORITY,
    MIN_PRIORITY,
    PLAIN,
    EnqueueOptions,
    check_dedup_key,
    check_message_id,
    enqueue_options,
    key_list,
)
from .limits import Limits, check_limit_key, check_limits
from .names import (
    require_workflow_name,
    validate_queue_name,
    validate_schema_name,
    validate_step_name,
    validate_worker_name,
)
from .payloads import (
    MAX_QUEUE_LIMIT,
    QUEUE_LIMITS,
    LimitOrigin,
    PayloadRules,
    PayloadSettings,
    QueueLimits,
    check_payload_list,
    check_payloads_given,
    check_queue_limits,
    encode_payloads,
)

__all__ = [
    "Limits",
    "check_limit_key",
    "check_limits",
    "MAX_DEDUP_KEY_LENGTH",
    "MAX_PRIORITY",
    "MIN_PRIORITY",
    "PLAIN",
    "EnqueueOptions",
    "check_dedup_key",
    "check_message_id",
    "enqueue_options",
    "key_list",
    "MAX_DURATION_SECONDS",
    "MAX_QUEUE_LIMIT",
    "QUEUE_LIMITS",
    "LimitOrigin",
    "PayloadRules",
    "PayloadSettings",
    "QueueLimits",
    "check_batch_size",
    "check_builder_batch",
    "check_builder_poll_interval",
    "check_builder_seconds",
    "check_iterator_poll_interval",
    "check_lease",
    "check_payload_list",
    "check_payloads_given",
    "check_queue_limits",
    "check_result_timeout",
    "check_retry_after",
    "check_some_builders",
    "decode_json",
    "encode_json",
    "encode_payloads",
    "require_callable",
    "require_duration",
    "require_int",
    "require_str",
    "require_type",
    "require_type_or_none",
    "require_workflow_name",
    "validate_queue_name",
    "validate_schema_name",
    "validate_step_name",
    "validate_worker_name",
]
