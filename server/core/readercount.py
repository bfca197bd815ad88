"""Reader counts summed over every process. No I/O.

Each process counts its own readers of each stream (``Hub.follower_counts``, without
editors' connections) and sends the counts to the others every few seconds. A
``ReaderTally`` keeps the latest counts of each other process until ``ttl`` after they
arrived: a process that stops sending (it died, or the broker is away) stops counting
once its counts expire, rather than for ever.
"""

from __future__ import annotations

from collections.abc import Mapping


class ReaderTally:
    """The other processes' latest reader counts, by process."""

    def __init__(self, *, ttl: float) -> None:
        self.ttl = ttl
        # process → (when its counts expire, slug → readers)
        self._counts: dict[str, tuple[float, dict[str, int]]] = {}
        # slug → the count last told to its editors.
        self._shown: dict[str, int] = {}

    def received(self, origin: str, counts: Mapping[str, int], now: float) -> None:
        """Process ``origin``'s counts, replacing what it sent before."""
        self._counts[origin] = (now + self.ttl, dict(counts))

    def expire(self, now: float) -> None:
        """Forget the counts of processes that did not send again in time."""
        for origin in [o for o, (until, _) in self._counts.items() if until <= now]:
            del self._counts[origin]

    def total(self, slug: str, local: Mapping[str, int]) -> int:
        """The readers of ``slug``: this process's (``local``) and every other's."""
        return local.get(slug, 0) + sum(
            counts.get(slug, 0) for _, counts in self._counts.values())

    def changes(self, slugs: set[str], local: Mapping[str, int]) -> dict[str, int]:
        """For the streams in ``slugs``, the totals that differ from those last told."""
        for slug in [s for s in self._shown if s not in slugs]:
            del self._shown[slug]
        out = {}
        for slug in slugs:
            count = self.total(slug, local)
            if self._shown.get(slug) != count:
                self._shown[slug] = count
                out[slug] = count
        return out
