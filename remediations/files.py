"""Log rotation and the cleanup of files past their retention (the guide's daily step 4)."""

from __future__ import annotations

from pathlib import Path

from configuration.schema import RetentionRule
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
    return ctx.box.call(readers.expired_files, str(rule.dir), rule.pattern, rule.max_age_days, rule.owners,
                        rule.recursive)


def find_argv(rule: RetentionRule) -> list[str]:
    """The guide's own `find DIR -name PATTERN -mtime +N -delete`, limited to what the rule owns:
    regular files (`find -P` follows no link) on DIR's filesystem (-xdev), directly in DIR unless the
    rule is recursive, owned by its owners; printing each file as it goes. One fixed command per
    rule, so the sudo rule that lets a maintenance user run it names exactly it."""
    owners = [word for owner in rule.owners for word in ("-o", "-user", owner)][1:]
    if len(rule.owners) > 1:
        owners = ["(", *owners, ")"]
    depth = [] if rule.recursive else ["-maxdepth", "1"]
    return ["find", str(rule.dir), "-xdev", *depth, "-name", rule.pattern, "-type", "f", *owners,
            "-mtime", f"+{rule.max_age_days}", "-print", "-delete"]


def _plan_cleanup(ctx, retention_rule: str) -> str:
    rule = _rule(ctx, retention_rule)
    files = _expired(ctx, rule)
    return (f"run {' '.join(find_argv(rule))}: {len(files)} file(s) under {rule.dir}: "
            + ", ".join(files[:20]))


@remediation("delete_expired_files", touches="files matching one retention rule, under its directory",
             plan=_plan_cleanup, guard=_rule_dir_is_safe,
             privileged=lambda settings: [find_argv(rule) for rule in settings.retention])
def delete_expired_files(ctx, retention_rule: str) -> Outcome:
    rule = _rule(ctx, retention_rule)
    argv = find_argv(rule)
    completed = ctx.run(argv)
    deleted = [line for line in completed.stdout.splitlines() if line]
    outcome = command_outcome("delete_expired_files", argv, completed,
                              f"deleted {len(deleted)} file(s) past {rule.max_age_days} day(s) under {rule.dir}")
    outcome.output = "\n".join(deleted) + (f"\n{completed.stderr.strip()}" if completed.stderr.strip() else "")
    return outcome


def _plan_rotate(ctx) -> str:
    return "run " + " ".join(ctx.settings.logrotate.command)


@remediation("rotate_logs", touches="the agent's logs, through the configured logrotate command", plan=_plan_rotate,
             privileged=lambda settings: [list(settings.logrotate.command)])
def rotate_logs(ctx) -> Outcome:
    argv = list(ctx.settings.logrotate.command)
    return command_outcome("rotate_logs", argv, ctx.run(argv), "ran " + " ".join(argv))
