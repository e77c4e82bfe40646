"""The agent's strategies file (Manual Weekly 1): the guide's `jq '.strategies[] | {name, enabled, weight,
performance}'`, read on the box (probes/remote/weeklyscan.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from configuration import Settings
from probes.host import Box
from probes.remote import weeklyscan


@dataclass(frozen=True)
class Strategy:
    name: str
    enabled: bool
    weight: float
    performance: Any

    def describe(self) -> str:
        state = "enabled" if self.enabled else "disabled"
        return f"{self.name} ({state}, weight {self.weight:g}, performance {_compact(self.performance)})"


def _compact(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}={_compact(item)}" for key, item in value.items()) + "}"
    return json.dumps(value) if not isinstance(value, str) else value


@dataclass(frozen=True)
class StrategyFile:
    """The guide's `jq '.strategies[] | {name, enabled, weight, performance}'` of the strategies file."""

    path: Path
    strategies: list[Strategy]
    problems: list[str]  # why the file, or an entry of it, is not what the agent reads

    @property
    def enabled(self) -> list[Strategy]:
        return [strategy for strategy in self.strategies if strategy.enabled]


def parse_strategies(path: Path, answer: dict) -> StrategyFile:
    """weeklyscan.read_json's answer made strategies; what does not fit the guide's shape is a problem."""
    if "invalid" in answer:
        return StrategyFile(path, [], [answer["invalid"]])
    data = answer["data"]
    entries = data.get("strategies") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        return StrategyFile(path, [], ['no "strategies" list at the top level'])
    strategies, problems = [], []
    for index, entry in enumerate(entries):
        where = f"strategies[{index}]"
        if not isinstance(entry, dict):
            problems.append(f"{where} is not an object")
            continue
        name, enabled, weight = entry.get("name"), entry.get("enabled"), entry.get("weight")
        where = f"{where} ({name})" if isinstance(name, str) else where
        wrong = [f'"{key}" is {json.dumps(value)}, not {kind}' for key, value, kind, fits in (
            ("name", name, "a name", isinstance(name, str) and name != ""),
            ("enabled", enabled, "true or false", isinstance(enabled, bool)),
            ("weight", weight, "a number from 0 to 1", isinstance(weight, (int, float)) and not isinstance(weight, bool)
             and 0 <= weight <= 1)) if not fits]
        if wrong:
            problems.append(f"{where}: {', '.join(wrong)}")
            continue
        strategies.append(Strategy(name, enabled, float(weight), entry.get("performance")))
    names = [strategy.name for strategy in strategies]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        problems.append(f"a strategy is listed twice: {', '.join(twice)}")
    return StrategyFile(path, strategies, problems)

def read_strategy_file(box: Box, settings: Settings) -> StrategyFile:
    path = settings.weekly_review.strategies_file
    try:
        answer = box.call(weeklyscan.read_json, str(path))
    except FileNotFoundError:
        raise FileNotFoundError(f"strategies file {path} does not exist: set [weekly_review] strategies_file to "
                                "the agent's strategies.json") from None
    return parse_strategies(path, answer)
