"""The [error_handling] and [diagnostics] sections: the agent's error handling as the guide reviews it (Error
Handling Monthly 1-3: its handler processes, its error dashboard, its response time) and the guide's
diagnostic commands, run when a reading is bad.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from configuration.section import Section

# A process name as the kernel and ps show it: what the handler's executable is called.
ProcessName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=64)]


class ErrorHandling(Section):
    """Error Handling Monthly 2 (EHM-002, EHM-003): each handler process and the error dashboard; Monthly 3
    (EHM-004): the agent's own response time, compared with its baseline ([baselines])."""

    per_box = True

    handlers: list[ProcessName] = Field(
        default_factory=lambda: ["trading-error-handler", "ai-error-handler", "network-error-handler",
                                 "system-error-manager"],
        description="The error handler processes, each matched by its own name exactly (argv[0]'s base name, or "
                    "its kernel name when it has no command line), never by searching command lines (pgrep -f).")
    dashboard_path: str = Field(default="/api/errors/dashboard", pattern=r"^/",
                                description="The agent's error dashboard, a path of [api] base_url.")
    performance_path: str = Field(default="/api/errors/performance-metrics", pattern=r"^/",
                                  description="EHM-004: the agent's performance metrics, a path of [api] base_url.")
    performance_field: str = Field(default="responseTime.avgMs", pattern=r"^[A-Za-z0-9_.]+$",
                                   description="EHM-004: the figure compared with its baseline, a dotted path "
                                               "into the metrics' JSON.")

    @model_validator(mode="after")
    def _unique(self) -> ErrorHandling:
        if len(set(self.handlers)) != len(self.handlers):
            raise ValueError(f"handlers lists a name twice ({self.handlers})")
        return self


class Diagnostics(Section):
    """The guide's diagnostic commands, run by a remediation when a reading is bad; their output goes into the
    report."""

    per_box = True

    error_analysis: list[str] = Field(default=["/usr/local/bin/trading-error-analysis"],
                                      description="Run when the error rate is high (ERR-001), as an argument list.")
    health_check: list[str] = Field(default=["/usr/local/bin/trading-health-check"],
                                    description="Run when the agent's health is low (ERR-003), as an argument list.")
