"""The agent's error handling: a month of its error logs (Error Handling Monthly 1), its handler processes
(Monthly 2), its response time (Monthly 3), and what its error API says of the week (Error Handling Weekly 1-3).

The logs and the processes are read on the box (probes/remote/reviewscan.py); the rest through the agent's API.
"""

from __future__ import annotations

import calendar
import datetime
from dataclasses import dataclass

from configuration import Settings
from probes.endpoints import AgentApi, ProbeError
from probes.host import Box
from probes.remote import reviewscan
from probes.services import ServiceManager

DASHBOARD = "/api/errors/dashboard"
ERROR_CONFIG = "/api/errors/config"
ALERT_RULES = "/api/errors/alert-rules"

def month_before(day: datetime.date) -> datetime.date:
    """`date -d "1 month ago"`: the same day of the month before, the last day of that month if it is shorter."""
    year, month = (day.year, day.month - 1) if day.month > 1 else (day.year - 1, 12)
    return day.replace(year=year, month=month, day=min(day.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class MonthErrors:
    start: datetime.date
    end: datetime.date
    files: list[dict]  # {path, lines, critical}, oldest first
    codes: dict[str, int]

    @property
    def total(self) -> int:
        return sum(entry["lines"] for entry in self.files)

    @property
    def critical(self) -> int:
        return sum(entry["critical"] for entry in self.files)

    @property
    def critical_rate_percent(self) -> float:
        """CRITICAL lines per error line, in percent; 0 when there were no errors (the guide divides by zero)."""
        return self.critical * 100 / self.total if self.total else 0.0

    def top(self, n: int = 10) -> list[tuple[str, int]]:
        """`sort | uniq -c | sort -nr | head`: most frequent first, ties by code descending."""
        return sorted(self.codes.items(), key=lambda item: (item[1], item[0]), reverse=True)[:n]

    def days_without_log(self) -> list[datetime.date]:
        have = {reviewscan.ERROR_LOG.match(entry["path"].rsplit("/", 1)[-1]).group(1) for entry in self.files}
        days = (self.end - self.start).days + 1
        every = (self.start + datetime.timedelta(days=n) for n in range(days))
        return [day for day in every if day.isoformat() not in have]


class ErrorAnalysis:
    def __init__(self, box: Box, settings: Settings):
        self.box = box
        self.log_dir = settings.paths.log_dir

    def month(self, today: datetime.date | None = None) -> MonthErrors:
        end = today or datetime.date.fromisoformat(self.box.call(reviewscan.today))
        start = month_before(end)
        found = self.box.call(reviewscan.month_errors, str(self.log_dir), start.isoformat(), end.isoformat())
        return MonthErrors(start, end, found["files"], found["codes"])

class ErrorHandlers:
    """Every configured handler's processes among the service manager's (`ServiceManager.tree_root`), read once
    per run."""

    def __init__(self, box: Box, names: list[str], services: ServiceManager):
        self.box = box
        self.names = names
        self.services = services
        self._found: dict | None = None

    def processes(self, name: str) -> list[dict]:
        if self._found is None or name not in self._found:
            root = self.services.tree_root() or 0
            self._found = self.box.call(reviewscan.processes_named, sorted({*self.names, name}), root)
        return self._found[name]

def error_handling_response(agent_api: AgentApi, settings: Settings) -> tuple[float, dict]:
    """The configured field of the agent's performance metrics (ms), and every number beside it."""
    config = settings.error_handling
    value = agent_api.number(config.performance_path, config.performance_field)
    parent = config.performance_field.rpartition(".")[0]
    siblings = agent_api.field(config.performance_path, parent) if parent else {}
    numbers = {key: item for key, item in (siblings or {}).items()
               if isinstance(item, (int, float)) and not isinstance(item, bool)} if isinstance(siblings, dict) else {}
    return value, numbers

class ErrorReview:
    """Error Handling Weekly 1-3: what the agent's error-handling API says about its week."""

    def __init__(self, api: AgentApi):
        self.api = api

    def active_patterns(self) -> list:
        patterns = self.api.field(DASHBOARD, "activePatterns")
        if not isinstance(patterns, list):
            raise ProbeError(f"GET {self.api.base_url}{DASHBOARD}: activePatterns is {patterns!r}, not a list")
        return patterns

    def recovery_rate(self) -> float:
        return self.api.number(DASHBOARD, "recoveryMetrics.autoRecoverySuccessRate")

    def manual_interventions(self) -> float:
        return self.api.number(DASHBOARD, "recoveryMetrics.manualInterventionsRequired")

    def retry_configurations(self) -> dict:
        found = self.api.field(ERROR_CONFIG, "retryConfigurations")
        if not isinstance(found, dict) or not found:
            raise ProbeError(f"GET {self.api.base_url}{ERROR_CONFIG}: retryConfigurations is {found!r}, "
                             "not a table of retry settings")
        return found

    def alert_rules(self) -> list[dict]:
        rules = self.api.field(ALERT_RULES, "rules")
        bad = [rule for rule in rules if not isinstance(rule, dict) or not isinstance(rule.get("name"), str)
               or isinstance(rule.get("triggered"), bool) or not isinstance(rule.get("triggered"), (int, float))] \
            if isinstance(rules, list) else rules
        if bad:
            raise ProbeError(f"GET {self.api.base_url}{ALERT_RULES}: rules must be a list of objects with a name "
                             f"and a number triggered; not {bad!r}")
        return rules

def parameters(settings: Settings) -> dict[str, list]:
    return {"error_handler": list(settings.error_handling.handlers)}
