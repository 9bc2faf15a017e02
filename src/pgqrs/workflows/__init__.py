"""Durable workflows: definitions and runs (`builders.py`, `run.py`), steps (`steps.py`),
`@workflow`/`@step`, and the workflow poll loop (`loop.py`). Built on `queue/` and `tables/`."""
