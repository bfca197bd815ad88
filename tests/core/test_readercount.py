"""Reader counts summed over processes, each process's counts expiring."""

from __future__ import annotations

from bulletin.core.readercount import ReaderTally


def test_counts_sum_over_processes_and_expire() -> None:
    """The total is the local count plus each other process's latest, until it expires."""
    tally = ReaderTally(ttl=6)
    tally.received("p2", {"s": 3, "t": 1}, now=10)
    tally.received("p3", {"s": 4}, now=11)
    tally.received("p2", {"s": 2}, now=12)
    assert tally.total("s", {"s": 1}) == 7
    assert tally.total("t", {}) == 0
    tally.expire(17.5)
    assert tally.total("s", {"s": 1}) == 3
    tally.expire(18)
    assert tally.total("s", {"s": 1}) == 1


def test_changes_tell_only_new_totals_of_watched_streams() -> None:
    """Editors are told a stream's total when it differs from what they were last told."""
    tally = ReaderTally(ttl=6)
    assert tally.changes({"s"}, {"s": 2}) == {"s": 2}
    assert tally.changes({"s"}, {"s": 2}) == {}
    tally.received("p2", {"s": 1}, now=0)
    assert tally.changes({"s", "t"}, {"s": 2}) == {"s": 3, "t": 0}
    assert tally.changes(set(), {}) == {}
    assert tally.changes({"s"}, {"s": 2}) == {"s": 3}
