"""Each row operation written once, as `async def op(db: Queryable, ...)`, over any executor:
one module per table or concern. The domain above (queue, workflows) calls these."""
