"""Queues: producers and consumers (`workers.py`), the poll loop (`loop.py`) and its builder,
the `consume_iter` iterator, `run_worker`, and the recovery sweep. Built on `tables/`."""
