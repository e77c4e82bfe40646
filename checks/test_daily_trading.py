"""Daily Maintenance 3: Trading Performance Check (trades and profit of today's trading log)."""

import pytest

pytestmark = pytest.mark.daily


@pytest.mark.check("TRD-001", severity="warning", why="no log for today means the agent is not trading or not logging")
def test_trading_log_written_today(daily_logs):
    assert daily_logs.trading_log_written(), f"no trading log for today: {daily_logs.trading_log} is missing"


@pytest.mark.check("TRD-002", severity="warning", why="no trades today - check system")
def test_trades_executed_today(daily_logs, settings, record_property):
    today = daily_logs.trading()
    record_property("trades_today", today.trades)
    record_property("profit_today_usdt", f"{today.profit_usdt:.2f}")
    minimum = settings.trading.min_trades_today
    assert today.trades >= minimum, (
        f"{today.trades} trade(s) executed today in {daily_logs.trading_log.name}, expected at least {minimum}"
    )
