"""Reproducible trading history: the same trades appear in the logs and in the database.

Every day's data comes from a random generator seeded with the date, so a regenerated file has the
same trades as before and the database agrees with the log. Today's events are squeezed between
local midnight and now, so nothing in the lab lies in the future.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

# pair, typical price in USDT, order size range
PAIRS = [
    ("BTC_USDT", 43000.0, (0.001, 0.02)),
    ("ETH_USDT", 2300.0, (0.01, 0.4)),
    ("SOL_USDT", 95.0, (0.5, 12.0)),
    ("GT_USDT", 8.4, (20.0, 400.0)),
]

# code -> (level, message); codes are the guide's (TE|AI|NE|SE)[0-9]{3}
KNOWN_ERRORS = {
    "AI001": ("ERROR", "model inference timeout after 5000ms"),
    "AI002": ("WARN", "prediction confidence below threshold, signal dropped"),
    "NE001": ("ERROR", "exchange connection reset by peer"),
    "NE002": ("CRITICAL", "ssh tunnel connection lost, reconnecting"),
    "NE003": ("WARN", "websocket feed stalled, resubscribing"),
    "SE001": ("WARN", "disk write latency above 200ms"),
    "SE002": ("ERROR", "memory usage above soft limit"),
    "TE001": ("ERROR", "order placement retry exhausted"),
    "TE002": ("ERROR", "order rejected: insufficient balance"),
    "TE003": ("WARN", "order status poll timed out"),
}
NEW_ERROR_CODE = "SE999"
# The agent's strategies.json: the enabled weights add up to 1; the disabled one has none.
STRATEGIES = [
    {"name": "momentum", "enabled": True, "weight": 0.4,
     "performance": {"winRate": 0.58, "profitUsdt": 412.35, "sharpe": 1.42, "trades": 61}},
    {"name": "mean-reversion", "enabled": True, "weight": 0.35,
     "performance": {"winRate": 0.54, "profitUsdt": 188.2, "sharpe": 0.97, "trades": 44}},
    {"name": "ai-signal", "enabled": True, "weight": 0.25,
     "performance": {"winRate": 0.61, "profitUsdt": 240.9, "sharpe": 1.21, "trades": 29}},
    {"name": "grid", "enabled": False, "weight": 0,
     "performance": {"winRate": 0.49, "profitUsdt": -35.1, "sharpe": -0.2, "trades": 12}},
]
_ID_EPOCH = date(2024, 1, 1)


@dataclass(frozen=True)
class Trade:
    number: int
    pair: str
    side: str
    qty: float
    price: float
    profit: float
    at: datetime

    @property
    def id(self) -> str:
        return f"T{self.number:06d}"


@dataclass(frozen=True)
class ErrorEvent:
    at: datetime
    level: str
    code: str
    message: str


def day_start(day: date) -> datetime:
    """Local midnight, as an aware datetime (the guide names files by `date +%Y-%m-%d`)."""
    return datetime(day.year, day.month, day.day).astimezone()


def day_end(day: date) -> datetime:
    return day_start(day + timedelta(days=1)) - timedelta(seconds=1)


def _moments(day: date, now: datetime, count: int, rng: random.Random) -> list[datetime]:
    start = day_start(day)
    end = now if day >= now.date() else day_end(day)
    span = max((end - start).total_seconds(), 0.0)
    return sorted(start + timedelta(seconds=int(span * rng.random())) for _ in range(count))


def trades_for_day(day: date, now: datetime) -> list[Trade]:
    rng = random.Random(f"trades-{day.isoformat()}")
    count = rng.randint(5, 9)
    trades = []
    for index, at in enumerate(_moments(day, now, count, rng)):
        pair, price, (low, high) = rng.choice(PAIRS)
        trades.append(Trade(
            number=(day - _ID_EPOCH).days * 100 + index + 1,
            pair=pair,
            side=rng.choice(("buy", "sell")),
            qty=round(rng.uniform(low, high), 4),
            price=round(price * rng.uniform(0.97, 1.03), 2),
            profit=round(rng.gauss(4.0, 12.0), 2),
            at=at,
        ))
    return trades


def errors_for_day(day: date, now: datetime) -> list[ErrorEvent]:
    rng = random.Random(f"errors-{day.isoformat()}")
    codes = sorted(KNOWN_ERRORS)
    events = []
    for at in _moments(day, now, rng.randint(6, 12), rng):
        code = rng.choice(codes)
        level, message = KNOWN_ERRORS[code]
        events.append(ErrorEvent(at, level, code, message))
    # the guide's weekly review greps "recovery.*failed"
    at = _moments(day, now, 1, rng)[0]
    events.append(ErrorEvent(at, "WARN", "NE001", "auto recovery attempt failed, retrying in 30s"))
    return sorted(events, key=lambda e: e.at)


def heartbeats_for_day(day: date, now: datetime) -> list[datetime]:
    start = day_start(day)
    end = now if day >= now.date() else day_end(day)
    beats, at = [], start
    while at <= end:
        beats.append(at)
        at += timedelta(hours=1)
    return beats


def stamp(at: datetime) -> str:
    """The log's timestamp: UTC, ISO 8601, trailing Z."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
