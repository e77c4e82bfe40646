"""The trading agent's API on base+1: the endpoints the guide queries, with switchable faults.

Every request is recorded in $LAB_DIR/run/agent-calls.jsonl, so a test can tell whether a
remediation really called, say, POST /api/errors/emergency-mode/enable. The emergency POSTs change
the agent's trading state (lab.agentstate), which GET /api/trading/status reports.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from lab import agentstate, pentest
from lab.httpbase import Handler, crashloop_check, serve, server_args
from lab.switches import Switches

CLOSE = "/api/v1/emergency/close-all-positions"
SHUTDOWN = "/api/emergency/shutdown"
ACTIONS = {  # POST path -> action name in the reply, and the change it makes to the trading state
    CLOSE: ("close-all-positions", {"openPositions": 0}),
    "/api/errors/emergency-mode/enable": ("emergency-mode-enabled", {"emergencyMode": True}),
    "/api/trading/pause-non-critical": ("non-critical-paused", {"tradingPaused": True}),
    "/api/logging/increase-verbosity": ("verbosity-increased", {"verbosity": "debug"}),
    SHUTDOWN: ("shutdown-initiated", {"shutdown": True}),
    "/api/trading/resume": ("trading-resumed", {"tradingPaused": False, "emergencyMode": False, "shutdown": False}),
}
FAILING = {CLOSE: "close-fails", SHUTDOWN: "shutdown-fails"}  # POST path -> the switch that makes it answer 500
ERROR_HANDLER = "/api/errors/"  # the error handling system's endpoints, which its own faults take down
BREAKERS = ["gateio-orders", "gateio-market-data", "gateio-account", "ai-inference", "websocket-feed"]
PATTERNS = [
    ("P-NE001", "NE001", "exchange connection resets during volatility spikes"),
    ("P-TE003", "TE003", "order status polls time out under load"),
    ("P-AI001", "AI001", "inference timeouts after model reload"),
    ("P-NE003", "NE003", "websocket feed stalls at the top of the hour"),
    ("P-SE001", "SE001", "disk latency while backups run"),
    ("P-TE001", "TE001", "order placement retries exhausted on one pair"),
    ("P-SE002", "SE002", "memory growth in the feature cache"),
]
HANG_SECONDS = 30.0
SLOW_SECONDS = 2.0


def now_iso(delta: timedelta = timedelta(0)) -> str:
    return (datetime.now(UTC) - delta).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class Metrics:
    """The healthy readings, bent by whichever switches are on."""

    def __init__(self, switches: Switches):
        self.on = switches.on

    def health(self) -> dict:
        overall = 40 if self.on("health-critical") else 65 if self.on("health-low") else 96
        status = "healthy" if overall >= 80 else "degraded" if overall >= 50 else "critical"
        part = "healthy" if overall >= 80 else "degraded"
        return {"overallHealth": overall, "status": status, "timestamp": now_iso(),
                "components": {"tradingEngine": part, "aiEngine": "healthy", "errorHandler": part,
                               "database": "healthy", "exchange": "healthy", "tunnel": "healthy"}}

    def open_breakers(self) -> int:
        return 5 if self.on("circuit-breaker-cascade") else 2 if self.on("circuit-breakers-open") else 0

    def dashboard(self) -> dict:
        rate = 75.0 if self.on("error-storm") else 25.0 if self.on("error-rate-high") else 2.5
        critical = 3 if self.on("critical-errors") else 0
        open_breakers = self.open_breakers()
        details = [{"name": BREAKERS[i], "state": "open", "openedAt": now_iso(timedelta(minutes=7 * i + 3)),
                    "failures": 5 + 3 * i} for i in range(open_breakers)]
        patterns = PATTERNS[: 7 if self.on("error-patterns-high") else 2]
        return {
            "errorMetrics": {"errorRate": rate, "criticalErrors": critical,
                             "totalErrors": int(rate * 24) if rate > 2.5 else 14},
            "recoveryMetrics": {
                "circuitBreakersOpen": open_breakers,
                "circuitBreakerDetails": details,
                "autoRecoverySuccessRate": 55.0 if self.on("recovery-rate-low") else 92.5,
                "manualInterventionsRequired": 6 if self.on("recovery-rate-low") else 1,
            },
            "activePatterns": [{"id": pid, "code": code, "description": text, "occurrences": 3 + n,
                                "severity": "medium" if n > 1 else "low"}
                               for n, (pid, code, text) in enumerate(patterns)],
            "timestamp": now_iso(),
        }

    def config(self) -> dict:
        return {"retryConfigurations": {
            "trading": {"maxRetries": 3, "initialDelayMs": 500, "maxDelayMs": 8000, "backoff": "exponential"},
            "network": {"maxRetries": 5, "initialDelayMs": 1000, "maxDelayMs": 30000, "backoff": "exponential"},
            "ai": {"maxRetries": 2, "initialDelayMs": 2000, "maxDelayMs": 10000, "backoff": "linear"},
        }, "circuitBreaker": {"failureThreshold": 5, "resetTimeoutMs": 60000}}

    def alert_rules(self) -> dict:
        dash = self.dashboard()
        rate, critical = dash["errorMetrics"]["errorRate"], dash["errorMetrics"]["criticalErrors"]
        return {"rules": [
            {"name": "high-error-rate", "threshold": 10, "triggered": int(rate > 10) * 4},
            {"name": "critical-error", "threshold": 0, "triggered": critical},
            {"name": "circuit-breaker-open", "threshold": 0, "triggered": self.open_breakers()},
            {"name": "exchange-latency", "threshold": 800, "triggered": 2},
            {"name": "low-recovery-rate", "threshold": 70, "triggered": int(self.on("recovery-rate-low"))},
        ]}

    def performance(self) -> dict:
        slow = self.on("api-slow")
        factor = 50 if self.on("error-handling-slow") else 1  # the error handling itself slow (monthly EHM-004)
        return {"responseTime": {"avgMs": (2040.0 if slow else 38.5) * factor,
                                 "p95Ms": (2300.0 if slow else 112.0) * factor,
                                 "p99Ms": (2900.0 if slow else 240.0) * factor},
                "throughput": {"requestsPerMinute": 180}, "timestamp": now_iso()}


class AgentHandler(Handler):
    paths = None  # set in main()
    instance = None  # this run's token (lab.agentstate.new_instance)
    _record_lock = threading.Lock()

    def record(self) -> None:
        split = urlsplit(self.path)
        entry = {"method": self.command, "path": split.path, "time": now_iso()}
        if split.query:
            entry["query"] = split.query
        line = json.dumps(entry) + "\n"
        with self._record_lock, open(self.paths.calls_file, "a") as calls:
            calls.write(line)

    def wait_while(self, switches: Switches, fault: str, seconds: float) -> None:
        """Sleep in small steps, ending early once the fault is cleared."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and switches.on(fault):
            time.sleep(0.2)

    def do_GET(self):  # noqa: N802 - http.server's naming
        self.record()
        switches = Switches(self.paths.faults_dir)
        metrics = Metrics(switches)
        routes = {"/api/health": metrics.health, "/api/errors/dashboard": metrics.dashboard,
                  "/api/errors/config": metrics.config, "/api/errors/alert-rules": metrics.alert_rules,
                  "/api/errors/performance-metrics": metrics.performance, "/api/trading/status": self.status,
                  "/api/config": pentest.agent_config}
        path = urlsplit(self.path).path
        route = routes.get(path)
        if route is None:
            return self.send_json(404, {"error": "not found", "path": self.path})
        if path in pentest.AGENT_PROTECTED and not pentest.authorized(self.headers, self.paths, switches):
            return self.send_json(401, {"error": "unauthorized", "message": "admin token required"})
        if switches.on("api-hang"):
            self.wait_while(switches, "api-hang", HANG_SECONDS)
        if switches.on("api-slow"):
            time.sleep(SLOW_SECONDS)
        if switches.on("api-500"):
            return self.send_json(500, {"error": "internal server error", "code": "SE002",
                                        "message": "error handler unavailable"})
        if path.startswith(ERROR_HANDLER) and (switches.applies_to("error-handler-down", self.instance)
                                               or switches.on("error-handler-broken")):
            return self.send_json(503, {"error": "service unavailable", "code": "SE002",
                                        "message": "error handling system is not responding"})
        if switches.on("api-malformed"):
            return self.send_body(200, b'{"errorMetrics": {', "application/json")
        return self.send_json(200, route())

    def status(self) -> dict:
        return {**agentstate.read(self.paths.agent_state), "timestamp": now_iso()}

    def do_POST(self):  # noqa: N802
        self.record()
        self.drain_body()
        path = urlsplit(self.path).path
        if path not in ACTIONS:
            return self.send_json(404, {"error": "not found", "path": self.path})
        action, changes = ACTIONS[path]
        switches = Switches(self.paths.faults_dir)
        if path == CLOSE and switches.on("close-hang"):
            # the exchange never confirms: nothing is closed, whenever the answer comes
            self.wait_while(switches, "close-hang", HANG_SECONDS)
            return self.send_json(504, {"error": "gateway timeout", "code": "TE003",
                                        "message": "the exchange did not confirm the closing orders", "closed": 0})
        if path in FAILING and switches.on(FAILING[path]):
            return self.send_json(500, {"error": "internal server error", "code": "TE001",
                                        "message": f"{action} failed", "action": action})
        before = agentstate.update(self.paths.agent_state, **changes)
        reply = {"ok": True, "action": action, "timestamp": now_iso()}
        if path == CLOSE:
            reply["closed"] = before["openPositions"]
        return self.send_json(200, reply)


def main() -> None:
    paths, ports = server_args("the trading agent's API (lab stand-in)")
    crashloop_check(paths, "trading-agent")
    AgentHandler.paths = paths
    AgentHandler.instance = agentstate.new_instance(paths.agent_instance)
    serve(AgentHandler, ports.api)


if __name__ == "__main__":
    main()
