"""Log rotation and the cleanup of files past their retention (the guide's daily step 4)."""

from __future__ import annotations

from pathlib import Path

from core.vocabulary import ActionStatus
from fixtures import readers
from remediations import Outcome, command_outcome, remediation


def _rule(ctx, retention_rule: str):
    return next((rule for rule in ctx.settings.retention if rule.name == retention_rule), None)


def _rule_dir_is_safe(ctx, retention_rule: str) -> str | None:
    rule = _rule(ctx, retention_rule)
    if rule is None:
        return f"no [[retention]] rule named {retention_rule!r}"
    if rule.dir.resolve() == Path("/"):
        return "refusing to clean the root directory"
    if not ctx.box.call(readers.is_dir, str(rule.dir)):
        return f"{rule.dir} is not a directory"
    return None


def _expired(ctx, rule) -> list[str]:
    return ctx.box.call(readers.expired_files, str(rule.dir), rule.pattern, rule.max_age_days)


def _plan_cleanup(ctx, retention_rule: str) -> str:
    rule = _rule(ctx, retention_rule)
    files = _expired(ctx, rule)
    return f"delete {len(files)} file(s) under {rule.dir}: " + ", ".join(files[:20])


@remediation("delete_expired_files", touches="files matching one retention rule, under its directory",
             plan=_plan_cleanup, guard=_rule_dir_is_safe)
def delete_expired_files(ctx, retention_rule: str) -> Outcome:
    rule = _rule(ctx, retention_rule)
    result = ctx.box.call(readers.delete_under, _expired(ctx, rule), str(rule.dir))
    deleted, refused = result["deleted"], result["refused"]
    status = ActionStatus.FAILED if refused else ActionStatus.DONE
    detail = f"deleted {len(deleted)} file(s) past {rule.max_age_days} day(s) under {rule.dir}"
    if refused:
        detail += f"; refused {len(refused)} outside it or behind a link"
    return Outcome("delete_expired_files", status, detail, output="\n".join(deleted))


def _plan_rotate(ctx) -> str:
    return "run " + " ".join(ctx.settings.logrotate.command)


@remediation("rotate_logs", touches="the agent's logs, through the configured logrotate command", plan=_plan_rotate,
             privileged=lambda settings: [list(settings.logrotate.command)])
def rotate_logs(ctx) -> Outcome:
    argv = list(ctx.settings.logrotate.command)
    return command_outcome("rotate_logs", argv, ctx.run(argv), "ran " + " ".join(argv))
