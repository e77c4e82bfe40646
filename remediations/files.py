"""Log rotation and the cleanup of files past their retention (the guide's daily step 4)."""

from __future__ import annotations

from pathlib import Path

from core.vocabulary import ActionStatus
from fixtures.files import expired_files
from remediations import Outcome, command_outcome, remediation


def _rule(ctx, retention_rule: str):
    return next((rule for rule in ctx.settings.retention if rule.name == retention_rule), None)


def _rule_dir_is_safe(ctx, retention_rule: str) -> str | None:
    rule = _rule(ctx, retention_rule)
    if rule is None:
        return f"no [[retention]] rule named {retention_rule!r}"
    if rule.dir.resolve() == Path("/"):
        return "refusing to clean the root directory"
    if not rule.dir.is_dir():
        return f"{rule.dir} is not a directory"
    return None


def _plan_cleanup(ctx, retention_rule: str) -> str:
    rule = _rule(ctx, retention_rule)
    files = expired_files(rule.dir, rule.pattern, rule.max_age_days)
    return f"delete {len(files)} file(s) under {rule.dir}: " + ", ".join(str(f) for f in files[:20])


@remediation("delete_expired_files", touches="files matching one retention rule, under its directory",
             plan=_plan_cleanup, guard=_rule_dir_is_safe)
def delete_expired_files(ctx, retention_rule: str) -> Outcome:
    rule = _rule(ctx, retention_rule)
    root = rule.dir.resolve()
    deleted, refused = [], []
    for path in expired_files(rule.dir, rule.pattern, rule.max_age_days):
        if path.is_symlink() or root not in path.resolve().parents:
            refused.append(path)
            continue
        path.unlink(missing_ok=True)
        deleted.append(path)
    status = ActionStatus.FAILED if refused else ActionStatus.DONE
    detail = f"deleted {len(deleted)} file(s) past {rule.max_age_days} day(s) under {rule.dir}"
    if refused:
        detail += f"; refused {len(refused)} outside it or behind a link"
    return Outcome("delete_expired_files", status, detail, output="\n".join(str(p) for p in deleted))


def _plan_rotate(ctx) -> str:
    return "run " + " ".join(ctx.settings.logrotate.command)


@remediation("rotate_logs", touches="the agent's logs, through the configured logrotate command", plan=_plan_rotate)
def rotate_logs(ctx) -> Outcome:
    argv = list(ctx.settings.logrotate.command)
    return command_outcome("rotate_logs", argv, ctx.run(argv), "ran " + " ".join(argv))
