"""Storage only: the executor seam (`executor.py`), one executor per backend, every SQL
statement (`sql/`) and the migrations. Nothing here knows about queues or workflows; the `Store`
users hold is built on top of this, in `pgqrs.client`."""
