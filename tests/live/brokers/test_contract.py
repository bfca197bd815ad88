"""The broker contract, run against every implementation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from bulletin.live.brokers import Broker, BrokerState, Resync, broker_from_url
from bulletin.live.brokers.base import BrokerClosed, BrokerMessage
from bulletin.live.brokers.memory import MemoryBroker
from bulletin.live.brokers.redis import RedisBroker

BROKER_KINDS = ["memory", "redis"]
MakeBroker = Callable[..., Broker]


@pytest.fixture(params=BROKER_KINDS)
def make_broker(request: pytest.FixtureRequest) -> MakeBroker:
    """Builds unconnected brokers of each kind (Redis: the shared server, a private prefix)."""
    if request.param == "memory":
        return lambda **options: MemoryBroker(**options)
    url: str = request.getfixturevalue("redis_url")
    return lambda **options: RedisBroker(url, **options)


@pytest.fixture
async def broker(make_broker: MakeBroker) -> AsyncIterator[Broker]:
    """A connected broker of each kind."""
    instance = make_broker()
    await instance.connect()
    yield instance
    await instance.disconnect()


async def messages(broker: Broker, count: int) -> list[BrokerMessage]:
    """The next ``count`` messages (Resync markers skipped)."""
    got: list[BrokerMessage] = []
    while len(got) < count:
        batch = await asyncio.wait_for(broker.next_messages(count), 5)
        got += [m for m in batch if isinstance(m, BrokerMessage)]
    return got


async def test_subscribers_receive_in_publish_order(broker: Broker) -> None:
    """Messages on a channel arrive in the order they were published."""
    await broker.subscribe("stream:a")
    for i in range(100):
        await broker.publish("stream:a", str(i))
    got = await messages(broker, 100)
    assert [m.payload for m in got] == [str(i) for i in range(100)]
    assert {m.channel for m in got} == {"stream:a"}


async def test_next_messages_returns_what_is_there_up_to_the_limit(broker: Broker) -> None:
    """next_messages waits for one message, then takes those already there, up to limit."""
    await broker.subscribe("stream:a")
    waiter = asyncio.create_task(broker.next_messages(10))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    for i in range(25):
        await broker.publish("stream:a", str(i))
    first = await asyncio.wait_for(waiter, 2)
    assert [m.payload for m in first] == [str(i) for i in range(len(first))]
    assert 1 <= len(first) <= 10
    rest: list[BrokerMessage] = []
    while len(first) + len(rest) < 25:
        batch = await asyncio.wait_for(broker.next_messages(10), 2)
        assert 1 <= len(batch) <= 10
        rest += batch
    assert [m.payload for m in first + rest] == [str(i) for i in range(25)]


async def test_only_subscribed_channels_are_delivered(broker: Broker) -> None:
    """A message on a channel nobody here follows is not delivered."""
    await broker.subscribe("stream:a")
    await broker.publish("stream:b", "no")
    await broker.publish("stream:a", "yes")
    [message] = await messages(broker, 1)
    assert (message.channel, message.payload) == ("stream:a", "yes")


async def test_unsubscribe_stops_delivery(broker: Broker) -> None:
    """After unsubscribe, the channel's messages no longer arrive."""
    await broker.subscribe("stream:a")
    await broker.subscribe("stream:b")
    await broker.unsubscribe("stream:a")
    await broker.publish("stream:a", "no")
    await broker.publish("stream:b", "yes")
    [message] = await messages(broker, 1)
    assert message.payload == "yes"


async def test_disconnect_wakes_a_waiting_reader(broker: Broker) -> None:
    """A task waiting in next_messages gets BrokerClosed when the broker disconnects."""
    await broker.subscribe("stream:a")
    waiter = asyncio.create_task(broker.next_messages(1))
    await asyncio.sleep(0.01)
    await broker.disconnect()
    with pytest.raises(BrokerClosed):
        await asyncio.wait_for(waiter, 2)


async def test_state_follows_connect_and_disconnect(make_broker: MakeBroker) -> None:
    """A broker is CLOSED before connect and after disconnect, CONNECTED in between."""
    broker = make_broker()
    assert broker.state is BrokerState.CLOSED
    await broker.connect()
    assert broker.state is BrokerState.CONNECTED
    await broker.disconnect()
    assert broker.state is BrokerState.CLOSED
    with pytest.raises(BrokerClosed):
        await broker.publish("stream:a", "late")


async def test_a_full_queue_drops_and_then_asks_for_a_resync(make_broker: MakeBroker) -> None:
    """When the consumer falls a whole queue behind, new messages are dropped, and the
    next call hands out a Resync before what was kept; publish never waits."""
    broker = make_broker(queue_size=2)
    await broker.connect()
    try:
        await broker.subscribe("c")
        for i in range(5):
            await asyncio.wait_for(broker.publish("c", str(i)), 1)
        for _ in range(200):
            if getattr(broker, "dropped", 0) >= 3:
                break
            await asyncio.sleep(0.01)
        assert await asyncio.wait_for(broker.next_messages(10), 2) == [Resync()]
        assert [m.payload for m in await messages(broker, 2)] == ["0", "1"]
    finally:
        await broker.disconnect()


async def test_unknown_scheme_is_refused() -> None:
    """A broker URL with an unknown scheme is a clear error."""
    with pytest.raises(ValueError, match="unsupported broker URL scheme 'kafka'"):
        broker_from_url("kafka://localhost")
