"""Log rotation and the cleanup of files past their retention (the guide's daily step 4).

The cleanup is the retention walker (probes/remote/expiry.py): on this machine it runs in this process as root; over
SSH it is the program root installed on the box (`expiry.PROGRAM`, commands/boxhelpers.py), one fixed command per
rule, so that the maintenance user's sudo rule names each exactly. Never `find -delete` on a path string.
"""

from __future__ import annotations

import shlex

from configuration.schema import RetentionRule
from core.vocabulary import ActionStatus
from probes.files import answer_of, left_text, listing, program_sha256, refusals_text, walker_arguments
from probes.remote import expiry
from remediations import Outcome, command_as_run, command_outcome, remediation


def _rule(ctx, retention_rule: str):
    return next((rule for rule in ctx.settings.retention if rule.name == retention_rule), None)


def _rule_dir_is_safe(ctx, retention_rule: str) -> str | None:
    rule = _rule(ctx, retention_rule)
    if rule is None:
        return f"no [[retention]] rule named {retention_rule!r}"
    if str(rule.dir) == "/":
        return "refusing to clean the root directory"
    return None


def expire_argv(rule: RetentionRule) -> list[str]:
    """The box program's command for a rule: what `make sudoers` allows, argument for argument."""
    return [expiry.PROGRAM, *walker_arguments(rule)]


def _command_shown(ctx, rule) -> str:
    """The command as the box runs it over SSH (with sudo where configured); here, the walker in this process."""
    if ctx.box.local:
        return f"the retention walker in this process ({shlex.join(walker_arguments(rule))})"
    return command_as_run(ctx.box, expire_argv(rule))


def _what(rule) -> str:
    where = "in and below" if rule.recursive else "directly in"
    return (f"matching {rule.pattern} older than {rule.max_age_days} day(s) {where} {rule.dir}, owned by "
            f"{', '.join(rule.owners)}, on its filesystem")


def _plan_cleanup(ctx, retention_rule: str) -> str:
    rule = _rule(ctx, retention_rule)
    found = listing(ctx.box, rule)
    said = f"run {_command_shown(ctx, rule)}: {len(found['expired'])} file(s) {_what(rule)}"
    if found["left"]:
        said += f" (left as not the rule's: {left_text(found['left'])})"
    if found["refused"]:
        said += f" (refused: {refusals_text(found['refused'])})"
    return said + ": " + ", ".join(found["expired"][:20])


def _expire_on_the_box(ctx, rule) -> dict:
    """The installed program through sudo, once the box's copy is known to be this suite's own."""
    installed = ctx.run(["sha256sum", expiry.PROGRAM], privileged=False)  # a box that does not answer raises
    if installed.returncode != 0 or installed.stdout.split()[:1] != [program_sha256()]:
        said = "not installed" if installed.returncode != 0 else "not the one this suite writes"
        raise RuntimeError(f"{expiry.PROGRAM} on box {ctx.box.name} is {said}: install it on the box with "
                           f"`sudo make install-box-helpers` (then `make sudoers` if the rules changed)")
    return answer_of(ctx.box.name, ctx.run(expire_argv(rule)), expiry.PROGRAM)


@remediation("delete_expired_files", touches="files matching one retention rule, under its directory",
             plan=_plan_cleanup, guard=_rule_dir_is_safe,
             privileged=lambda settings: [expire_argv(rule) for rule in settings.retention])
def delete_expired_files(ctx, retention_rule: str) -> Outcome:
    """Deleted files are listed; a refusal (a link or an unsafe transition on the way) makes it failed, with
    what was refused and why, so that the operator is told: it is never a routine "fixed"."""
    rule = _rule(ctx, retention_rule)
    if ctx.box.local:
        done = expiry.expire(str(rule.dir), rule.pattern, rule.max_age_days, rule.owners, rule.recursive,
                             delete=True)
    else:
        done = _expire_on_the_box(ctx, rule)
    detail = f"deleted {len(done['expired'])} file(s) past {rule.max_age_days} day(s) under {rule.dir}"
    if done["left"]:
        detail += f"; left as not the rule's: {left_text(done['left'])}"
    status = ActionStatus.DONE
    if done["refused"]:
        status = ActionStatus.FAILED
        detail = f"refused {refusals_text(done['refused'])}; {detail}"
    output = [*done["expired"], *(f"refused: {item['path']}: {item['why']}" for item in done["refused"])]
    return Outcome("delete_expired_files", status, detail, output="\n".join(output))


def _plan_rotate(ctx) -> str:
    return "run " + command_as_run(ctx.box, list(ctx.settings.logrotate.command))


@remediation("rotate_logs", touches="the agent's logs, through the configured logrotate command", plan=_plan_rotate,
             privileged=lambda settings: [list(settings.logrotate.command)])
def rotate_logs(ctx) -> Outcome:
    argv = list(ctx.settings.logrotate.command)
    return command_outcome("rotate_logs", argv, ctx.run(argv), "ran " + " ".join(argv))
