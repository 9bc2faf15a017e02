import pgqrs


async def test_round_trip(store: pgqrs.Store, queue: str) -> None:
    producer = await store.producer(queue)
    consumer = await store.consumer(queue)
    mid = await producer.enqueue({"hello": "world"})
    [message] = await consumer.dequeue()
    assert message.id == mid
    assert message.payload == {"hello": "world"}
    assert await consumer.archive(mid) is True
