"""Weekly 4: Performance Analysis: trades, profit and profit per trade over the last week.

The guide greps the trading logs for the date of exactly 7 days ago, so it counts one day, and it reads
only the uncompressed logs while every day but the last is rotated to `.gz`. Here the window is the
`[weekly_review] window_days` whole days before today (today is not over), each day's log chosen by the
date in its name, rotated ones included, with the guide's per-line semantics (probes/remote/logscan.py).
"""

import pytest

pytestmark = pytest.mark.weekly


@pytest.mark.check("PERF-001", severity="info",
                   why="the week's trades and profit are how the operator sees whether the agent earns its keep")
def test_week_of_trading_figures(weekly_logs, record_property):
    week = weekly_logs.trading
    record_property("trading_window", f"{week.first}..{week.last}")
    record_property("trades_7d", week.trades)
    record_property("profit_7d_usdt", f"{week.profit_usdt:.2f}")
    average = week.average_usdt
    record_property("avg_profit_per_trade_usdt", "no trades" if average is None else f"{average:.2f}")
    record_property("trades_per_day", ", ".join(
        f"{day['date']}={'no log' if day['figures'] is None else day['figures']['trades']}" for day in week.days))
    # A day without its log would make the week's figures silently smaller: the agent logs every day it runs.
    assert not week.missing, (
        f"no trading log for {', '.join(week.missing)} in {weekly_logs.log_dir} (neither plain nor rotated): "
        f"the figures cover {len(week.read)} of {len(week.days)} day(s); the agent did not run or log those "
        f"days, or their logs were deleted")
