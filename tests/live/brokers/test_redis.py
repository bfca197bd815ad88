"""What the Redis broker adds to the contract: prefixes, other processes, outages."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from bulletin.live.brokers import BrokerState, Resync
from bulletin.live.brokers.base import BrokerMessage, BrokerUnavailable
from bulletin.live.brokers.redis import RedisBroker, split_url
from tests.conftest import PrivateRedis, with_prefix


@pytest.fixture
async def brokers() -> AsyncIterator[Callable[[str], RedisBroker]]:
    """Connects brokers to a URL; all are disconnected at the end."""
    made: list[RedisBroker] = []

    def make(url: str) -> RedisBroker:
        broker = RedisBroker(url)
        made.append(broker)
        return broker

    yield make
    for broker in made:
        await broker.disconnect()


async def until(condition: Callable[[], bool], seconds: float = 10) -> None:
    """Wait until ``condition()`` holds."""
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached")


async def take(broker: RedisBroker, count: int) -> list[BrokerMessage | Resync]:
    """The next ``count`` items, messages and Resyncs alike."""
    got: list[BrokerMessage | Resync] = []
    while len(got) < count:
        got += await asyncio.wait_for(broker.next_messages(count - len(got)), 10)
    return got


def test_prefix_is_taken_from_the_url_and_the_rest_kept() -> None:
    """The prefix parameter is Bulletin's; every other URL part goes to redis-py."""
    assert split_url("redis://:pw@h:6380/2?prefix=site-a:&health_check_interval=5") == (
        "redis://:pw@h:6380/2?health_check_interval=5", "site-a:")
    assert split_url("rediss://h/0") == ("rediss://h/0", "bulletin:")


async def test_messages_reach_other_processes_with_the_same_prefix_only(
    redis_url: str, brokers: Callable[[str], RedisBroker],
) -> None:
    """A message published by one broker reaches another with the same prefix, not one
    with a different prefix on the same Redis."""
    reader, other_site, writer = (brokers(redis_url), brokers(redis_url + "-other"),
                                  brokers(redis_url))
    for broker in (reader, other_site, writer):
        await broker.connect()
    await reader.subscribe("stream:a")
    await other_site.subscribe("stream:a")
    await writer.publish("stream:a", "hello")
    assert await take(reader, 1) == [BrokerMessage("stream:a", "hello")]
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(other_site.next_messages(1), 0.3)


async def test_an_outage_is_survived_and_ends_with_a_resync(
    private_redis: PrivateRedis, brokers: Callable[[str], RedisBroker],
) -> None:
    """While Redis is down, publish fails fast and subscribe still returns; once it is
    back, every channel is subscribed again, a Resync is handed out, and messages flow."""
    url = with_prefix(private_redis.url, "t:")
    reader, writer = brokers(url), brokers(url)
    await reader.connect()
    await writer.connect()
    await reader.subscribe("stream:a")
    private_redis.stop()
    await until(lambda: reader.state is writer.state is BrokerState.RECONNECTING)
    with pytest.raises(BrokerUnavailable):
        await asyncio.wait_for(writer.publish("stream:a", "during"), 1)
    await asyncio.wait_for(reader.subscribe("stream:b"), 1)

    private_redis.start()
    await until(lambda: reader.state is writer.state is BrokerState.CONNECTED)
    assert await take(reader, 1) == [Resync()]
    await writer.publish("stream:a", "after-a")
    await writer.publish("stream:b", "after-b")
    # The writer also sends "during" again once it is back (best effort: it may arrive
    # before the reader subscribed again, in which case the Resync covered it).
    got = [m for m in await take(reader, 2) if m != BrokerMessage("stream:a", "during")]
    while len(got) < 2:
        got += [m for m in await take(reader, 1) if m != BrokerMessage("stream:a", "during")]
    assert got == [BrokerMessage("stream:a", "after-a"), BrokerMessage("stream:b", "after-b")]


async def test_a_broker_started_while_redis_is_down_connects_later(
    private_redis: PrivateRedis, brokers: Callable[[str], RedisBroker],
) -> None:
    """connect() does not fail while Redis is down; the broker connects when it comes up,
    and the channels followed in the meantime start with a Resync."""
    private_redis.stop()
    url = with_prefix(private_redis.url, "t:")
    reader = brokers(url)
    await reader.connect()
    assert reader.state is BrokerState.RECONNECTING
    await reader.subscribe("stream:a")
    private_redis.start()
    await until(lambda: reader.state is BrokerState.CONNECTED)
    assert await take(reader, 1) == [Resync()]
    writer = brokers(url)
    await writer.connect()
    await writer.publish("stream:a", "x")
    assert await take(reader, 1) == [BrokerMessage("stream:a", "x")]


async def test_a_failed_publish_reconnects_the_subscriber_and_resyncs(
    redis_url: str, brokers: Callable[[str], RedisBroker], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A publish that fails while the subscriber connection still looks healthy makes the
    broker reconnect at once (a silent network would take the dead-peer timeout to show),
    so that a Resync follows and nothing published meanwhile stays missing."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    broker = brokers(redis_url)
    await broker.connect()
    await broker.subscribe("stream:a")
    assert broker._client is not None

    async def fail(channel: str, payload: str) -> int:
        raise RedisConnectionError("network unreachable")

    with monkeypatch.context() as patch:
        patch.setattr(broker._client, "publish", fail)
        with pytest.raises(BrokerUnavailable):
            await broker.publish("stream:a", "lost")
    assert await take(broker, 1) == [Resync()]
    assert broker.state is BrokerState.CONNECTED
    # The payload that failed is sent again once the broker is back.
    assert await take(broker, 1) == [BrokerMessage("stream:a", "lost")]
