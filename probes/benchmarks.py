"""Monthly 2: the benchmarks that are safe on a trading box (the agent's API, the database, the disk), each in
the unit of its baseline (probes/baselines.py holds what they are compared with).
"""

from __future__ import annotations

import statistics
import time

from configuration import Settings
from probes.endpoints import ProbeError, http_get
from probes.host import Box, NotApplicable
from probes.remote import reviewscan


class Benchmarks:
    """Each measurement in the unit of its baseline (probes/baselines.py): milliseconds, MB/s."""

    def __init__(self, box: Box, settings: Settings):
        self.box = box
        self.settings = settings
        self.config = settings.baselines

    def api_response_ms(self) -> tuple[float, list[float]]:
        """The median of `api_requests` GETs of the agent's `api_path`, and each, in ms. A GET that fails is no
        measurement: the check could not look."""
        api = self.settings.api
        url = api.base_url.rstrip("/") + self.config.api_path
        times = []
        for _ in range(self.config.api_requests):
            reading = http_get(self.box, url, api.timeout_seconds)
            if not reading.ok:
                raise ProbeError(f"GET {url}: {reading.problem}: no answer time to measure")
            times.append(reading.seconds * 1000)
        return statistics.median(times), times

    def db_query_ms(self, database) -> tuple[float, list[float]]:
        """The median of `db_runs` runs of `db_query` over the run's connection (probes/database.py), each
        in a read-only transaction (a query that would write is refused by the server), in ms."""
        times = []
        database.execute("SET default_transaction_read_only = on", fetch="none")
        try:
            for _ in range(self.config.db_runs):
                started = time.perf_counter()
                database.execute(self.config.db_query, fetch="all")
                times.append((time.perf_counter() - started) * 1000)
        finally:
            database.execute("RESET default_transaction_read_only", fetch="none")
        return statistics.median(times), times

    def disk_read(self) -> dict:
        """{path, bytes, seconds, mb_per_s, written}; NotApplicable when nothing is configured to read."""
        config = self.config
        if config.disk_read_file is None and config.disk_scratch_dir is None:
            raise NotApplicable("no file to read: set [baselines] disk_read_file (a large file on the disk to "
                                "measure) or disk_scratch_dir (a file written there once)")
        return self.box.call(reviewscan.read_speed, str(config.disk_read_file or ""),
                             str(config.disk_scratch_dir or ""), config.disk_read_mb)
