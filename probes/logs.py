"""The agent's dated trading and error logs, today's (the daily checks) and the review's windows of days (Weekly 4,
Error Handling Weekly 1), scanned where they lie (see probes/remote/logscan.py).

On this machine the scanner runs in-process (in parallel for a big file); on a box over SSH it runs
on the box's python3, one process, and only the figures come back.
"""

from __future__ import annotations

import datetime
import functools
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from configuration.performance import WeeklyReview
from probes.host import Box
from probes.remote import logscan, readers


class DailyLogs:
    """The agent writes one trading and one error log per local day, as the guide's `date +%F`."""

    def __init__(self, box: Box, log_dir: Path, known_errors: Path, day: datetime.date | None = None):
        self.box = box
        self.log_dir = log_dir
        self.known_errors_file = known_errors
        self.day = day or datetime.date.today()
        self.workers = None if box.local else 1

    @property
    def trading_log(self) -> Path:
        return self.log_dir / f"trading-{self.day.isoformat()}.log"

    @property
    def error_log(self) -> Path:
        return self.log_dir / f"error-{self.day.isoformat()}.log"

    def trading_log_written(self) -> bool:
        return self.box.call(readers.is_file_in, str(self.trading_log), "log directory")

    def error_log_written(self) -> bool:
        return self.box.call(readers.is_file_in, str(self.error_log), "log directory")

    def trading(self) -> logscan.TradingTotals:
        """Trades and profit today; the log must exist (a check asserts that first)."""
        return logscan.TradingTotals(**self.box.call(logscan.trading_figures, str(self.trading_log), self.workers))

    def errors(self) -> logscan.ErrorCounts:
        figures = self.box.call(logscan.error_figures, str(self.error_log), self.workers)
        return logscan.ErrorCounts(by_code=Counter(figures["by_code"]), critical_lines=figures["critical_lines"],
                                   lines=figures["lines"])

    def known_errors(self) -> set[str]:
        return set(self.box.call(logscan.read_known_errors, str(self.known_errors_file)))


def per_day(days: list[dict], figure: str) -> str:
    """"2026-11-20=12, 2026-11-21=no log, ..." (a day without a log says so: it is not a zero)."""
    return ", ".join(f"{day['date']}={'no log' if day['figures'] is None else day['figures'][figure]}"
                     for day in days)

@dataclass(frozen=True)
class TradingWindow:
    """Weekly 4's figures over whole days: TRADE_EXECUTED lines are trades, PROFIT lines' last fields the profit."""

    days: list[dict]  # logscan.window_figures("trading", ...)

    @property
    def first(self) -> str:
        return self.days[0]["date"]

    @property
    def last(self) -> str:
        return self.days[-1]["date"]

    @property
    def missing(self) -> list[str]:
        """Dates of the window without any trading log."""
        return [day["date"] for day in self.days if day["figures"] is None]

    @property
    def read(self) -> list[dict]:
        return [day for day in self.days if day["figures"] is not None]

    @property
    def trades(self) -> int:
        return sum(day["figures"]["trades"] for day in self.read)

    @property
    def profit_usdt(self) -> float:
        """Added line by line in date order, as awk over the week's PROFIT lines; 0.0 with no log at all."""
        return self.read[-1]["figures"]["window_profit_usdt"] if self.read else 0.0

    @property
    def average_usdt(self) -> float | None:
        """Profit per trade; None when there was no trade (the guide's `bc` divides by zero)."""
        return self.profit_usdt / self.trades if self.trades else None

    @property
    def files(self) -> list[str]:
        return [Path(path).name for day in self.days for path in day["files"]]


class WeekLogs:
    """The agent's dated logs over the review's windows, read once per run."""

    def __init__(self, box: Box, log_dir: Path, review: WeeklyReview, today: str | None = None):
        self.box = box
        self.log_dir = log_dir
        self.review = review
        self.today = today  # None: the box's own local date
        self.workers = None if box.local else 1

    @functools.cached_property
    def trading(self) -> TradingWindow:
        """The `window_days` whole days before today: a week's figures do not depend on the hour of the run."""
        return TradingWindow(self.box.call(logscan.window_figures, "trading", str(self.log_dir), 1,
                                           self.review.window_days, self.today, self.workers))

    @functools.cached_property
    def errors(self) -> list[dict]:
        """Error Handling Weekly 1: today and the `error_days` - 1 days before, as the guide's `{0..6}`."""
        return self.box.call(logscan.window_figures, "error", str(self.log_dir), 0, self.review.error_days,
                             self.today, self.workers)

    def silent_days(self) -> list[str]:
        """Dates of the error window with neither an error log nor a trading log: the agent did not log at all."""
        dates = [day["date"] for day in self.errors if day["figures"] is None]
        traded = self.box.call(logscan.dated_logs, str(self.log_dir), "trading", dates) if dates else {}
        return [when for when in dates if not traded[when]]

    def failed_recoveries(self) -> list[str]:
        """The last lines of the same days' error logs that match `failed_recovery_pattern`."""
        review = self.review
        return self.box.call(logscan.window_lines, "error", str(self.log_dir), 0, review.error_days,
                             review.failed_recovery_pattern, review.failed_recoveries_shown, self.today)
