"""The guide's diagnostic tools, run when a reading is bad so their output lands in the report."""

from __future__ import annotations

import dataclasses

from remediations import command_as_run, command_outcome, remediation


def _argv(ctx, which: str) -> list[str]:
    return list(getattr(ctx.settings.diagnostics, which))


def _tool_exists(ctx, which: str) -> str | None:
    if not hasattr(ctx.settings.diagnostics, which):
        return f"no [diagnostics] command named {which!r}"
    program = _argv(ctx, which)[0]
    if not ctx.box.host.exists(program):
        return f"{program} is not installed or not executable"
    return None


@remediation("run_diagnostic", touches="nothing: it only reads and reports",
             plan=lambda ctx, which: "run " + command_as_run(ctx.box, _argv(ctx, which), privileged=False),
             guard=_tool_exists)
def run_diagnostic(ctx, which: str):
    argv = _argv(ctx, which)
    # The command line goes to the report with the output; alerts carry the short detail only.
    outcome = command_outcome("run_diagnostic", argv, ctx.run(argv, privileged=False),
                              f"ran the {which} diagnostic: its output is in the report")
    return dataclasses.replace(outcome, output=f"$ {' '.join(argv)}\n{outcome.output}")
