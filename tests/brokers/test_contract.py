"""The broker contract, run against every implementation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from server.brokers import Broker, broker_from_url
from server.brokers.base import BrokerClosed, BrokerMessage

BROKER_URLS = ["memory://"]


@pytest.fixture(params=BROKER_URLS)
async def broker(request: pytest.FixtureRequest) -> AsyncIterator[Broker]:
    """A connected broker of each kind."""
    instance = broker_from_url(request.param)
    await instance.connect()
    yield instance
    await instance.disconnect()


async def test_subscribers_receive_in_publish_order(broker: Broker) -> None:
    """Messages on a channel arrive in the order they were published."""
    await broker.subscribe("stream:a")
    for i in range(100):
        await broker.publish("stream:a", str(i))
    got: list[BrokerMessage] = []
    while len(got) < 100:
        got += await asyncio.wait_for(broker.next_messages(30), 2)
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
    [message] = await asyncio.wait_for(broker.next_messages(1), 2)
    assert (message.channel, message.payload) == ("stream:a", "yes")


async def test_unsubscribe_stops_delivery(broker: Broker) -> None:
    """After unsubscribe, the channel's messages no longer arrive."""
    await broker.subscribe("stream:a")
    await broker.subscribe("stream:b")
    await broker.unsubscribe("stream:a")
    await broker.publish("stream:a", "no")
    await broker.publish("stream:b", "yes")
    [message] = await asyncio.wait_for(broker.next_messages(1), 2)
    assert message.payload == "yes"


async def test_disconnect_wakes_a_waiting_reader(broker: Broker) -> None:
    """A task waiting in next_messages gets BrokerClosed when the broker disconnects."""
    await broker.subscribe("stream:a")
    waiter = asyncio.create_task(broker.next_messages(1))
    await asyncio.sleep(0.01)
    await broker.disconnect()
    with pytest.raises(BrokerClosed):
        await asyncio.wait_for(waiter, 2)


async def test_unknown_scheme_is_refused() -> None:
    """A broker URL with an unknown scheme is a clear error."""
    with pytest.raises(ValueError, match="unsupported broker URL scheme 'kafka'"):
        broker_from_url("kafka://localhost")


async def test_memory_broker_drops_rather_than_blocks_when_full() -> None:
    """A full memory queue drops and counts new messages; publish never waits."""
    from server.brokers.memory import MemoryBroker

    small = MemoryBroker(queue_size=2)
    await small.connect()
    await small.subscribe("c")
    for i in range(5):
        await asyncio.wait_for(small.publish("c", str(i)), 1)
    assert small.dropped == 3
    assert [m.payload for m in await small.next_messages(10)] == ["0", "1"]
    await small.disconnect()
