"""The shared directory of prometheus-client's multiprocess mode, owned by the supervisor.

``bulletin serve --workers N`` makes a fresh private directory before it starts any
worker and names it in ``PROMETHEUS_MULTIPROC_DIR``, which the workers inherit: each writes
its metrics there (``web/metrics.py``), and a scrape of any worker reads them all. When a
worker dies its live gauges' files are removed (``mark_process_dead``), so that the gauges
sum the workers alive; its counters stay, so that totals never go back. (A worker that
stops gracefully removes its own: ``Metrics.stop``.) The directory is
removed when the supervisor stops.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from prometheus_client import multiprocess

ENV = "PROMETHEUS_MULTIPROC_DIR"


class MetricsDir:
    """The directory, for as long as the supervisor runs."""

    def __init__(self) -> None:
        self.path = tempfile.mkdtemp(prefix="bulletin-metrics-")  # mode 0700
        self._previous = os.environ.get(ENV)
        # Workers are spawned with the supervisor's environment at the time.
        os.environ[ENV] = self.path

    def worker_died(self, pid: int | None) -> None:
        """Drop a dead worker's live gauges."""
        if pid is not None:
            multiprocess.mark_process_dead(pid, self.path)  # type: ignore[no-untyped-call]

    def remove(self) -> None:
        """Remove the directory (every worker has stopped)."""
        shutil.rmtree(self.path, ignore_errors=True)
        if self._previous is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = self._previous
