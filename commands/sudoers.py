"""`make sudoers CONFIG=PATH`: the sudo rules a maintenance user needs on the box, and nothing more.

Each remediation declares the commands it runs as root for a configuration (services to restart,
the logrotate command), and the weekly audit its readings that need root (`sshd -T`, `fail2ban-client
status`); this prints them as one sudoers drop-in, every command with its exact arguments.
Install it on the box and check it there:

    python -m commands.sudoers --config PATH --user trading-maint > trading-maintenance
    visudo -cf trading-maintenance && install -m 0440 trading-maintenance /etc/sudoers.d/

The user is taken from an `ssh://USER@host` backend when --user is not given.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from urllib.parse import urlsplit

from configuration import ConfigError, Settings, load
from core.vocabulary import ExitStatus
from fixtures.audit import root_reads
from remediations import load_all

# sudoers' own characters, and its wildcards: a `*` left bare in an argument matches anything, spaces
# and further arguments included (`find /tmp -name trading-* ...` would allow `-exec`).
SPECIAL = str.maketrans({c: "\\" + c for c in "\\,:=*?[]"})
SECURE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # where `sudo -n NAME` looks


def privileged_commands(settings: Settings) -> list[list[str]]:
    """Every command any registered remediation may run as root, and every reading of the weekly audit that
    needs root, for every box of the configuration."""
    found: list[list[str]] = []
    for box in settings.boxes():
        for action in load_all().values():
            found += [argv for argv in action.privileged(box) if argv not in found]
        found += [argv for argv in root_reads(box) if argv not in found]
    return found


def rule_line(argv: list[str]) -> str | None:
    """sudo matches the program by its full path, as it finds it in its secure_path; None when the
    program is not installed on this machine (run this on the box)."""
    program = argv[0] if argv[0].startswith("/") else shutil.which(argv[0], path=SECURE_PATH)
    return " ".join([program, *argv[1:]]).translate(SPECIAL) if program else None


def sudoers_text(settings: Settings, user: str) -> str:
    wanted = privileged_commands(settings)
    commands = [line for line in map(rule_line, wanted) if line]
    missing = [" ".join(argv) for argv in wanted if rule_line(argv) is None]
    lines = [f"# Written by `make sudoers` from {settings.source}: what the maintenance suite's remediations",
             "# run as root on the box, each with its exact arguments. Check: visudo -cf FILE."]
    lines += [f"# NOT INCLUDED, its program is not installed here (run this on the box): {cmd}" for cmd in missing]
    if not commands:
        return "\n".join([*lines, "# (no remediation of this configuration needs root)"]) + "\n"
    lines.append("Cmnd_Alias TRADING_MAINTENANCE = " + ", \\\n    ".join(commands))
    lines.append(f"{user} ALL=(root) NOPASSWD: TRADING_MAINTENANCE")
    return "\n".join(lines) + "\n"


def backend_user(settings: Settings) -> str | None:
    return urlsplit(settings.host.backend).username


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m commands.sudoers", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--user", help="the maintenance user (default: the user of an ssh:// backend)")
    args = parser.parse_args(argv)
    try:
        settings = load(args.config)
    except ConfigError as error:
        print(f"no rules written: {error}", file=sys.stderr)
        return ExitStatus.BAD_CONFIGURATION
    user = args.user or backend_user(settings)
    if not user:
        print(f"no rules written: {args.config} reaches the box as the user running the suite "
              f"(backend {settings.host.backend}); name the maintenance user with --user USER", file=sys.stderr)
        return ExitStatus.BAD_CONFIGURATION
    print(sudoers_text(settings, user), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
