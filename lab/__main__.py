"""python -m lab up|down [--purge]|status|fault list|fault inject NAME|fault clear NAME|--all|config-path|box ...

LAB_DIR (default <repo>/.lab) and LAB_PORT_BASE (default 23000) choose where and on which ports.
Expected problems (lab not up, unknown fault) print one clear line, never a traceback.
`python -m lab box ...` is the box: a real systemd as PID 1 of its own namespaces (lab/box/cli.py).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys

from lab import faults
from lab.core import Lab
from lab.errors import LabError
from lab.faultcli import fault_command


def _progress(message: str) -> None:
    """Progress on stderr; a closed stderr (`| head`) must not abort an `up` half way."""
    with contextlib.suppress(OSError):
        print(f"lab: {message}", file=sys.stderr, flush=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lab", description="the trading host lab")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("up", help="start the lab, or return a running one to healthy")
    down = commands.add_parser("down", help="stop everything and unmount the tmpfs")
    down.add_argument("--purge", action="store_true", help="also delete LAB_DIR")
    commands.add_parser("status", help="programs, their states and the active faults")
    commands.add_parser("config-path", help="print the path of the lab's maintenance.toml")
    commands.add_parser("box", add_help=False, help="a box with a real systemd: python -m lab box --help")
    fault = commands.add_parser("fault", help="list, inject or clear faults")
    actions = fault.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("list", help="fault names and what each breaks")
    inject = actions.add_parser("inject", help="inject a fault")
    inject.add_argument("name")
    clear = actions.add_parser("clear", help="clear a fault, or all with --all")
    clear.add_argument("name", nargs="?")
    clear.add_argument("--all", action="store_true")
    return parser


def _status(lab: Lab) -> int:
    status = lab.status()
    if not status["up"]:
        print(f"lab in {lab.lab_dir} is down")
        return 3
    print(f"lab in {lab.lab_dir} is up (port base {lab.ports.base})")
    for name, state in status["programs"].items():
        print(f"  {name:<20} {state}")
    print("faults: " + (", ".join(status["faults"]) or "none"))
    if status["mended"]:
        print("mended since injected (by the suite or by hand): " + ", ".join(status["mended"]))
    print("tmpfs:  " + ("mounted" if status["tmpfs"] else "not mounted"))
    print(f"config: {status['config']}")
    return 0


def _fault(lab: Lab, args) -> int:
    return fault_command(lab, args, faults, "python -m lab", "lab", available=set(lab.available_faults()))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["box"]:  # its own parser: `box exec -- CMD` must reach it untouched
        from lab.box.cli import main as box_main

        return box_main(argv[1:])
    args = _parser().parse_args(argv)
    try:
        if args.command == "config-path":
            print(Lab.from_env().config_path)
            return 0
        lab = Lab.from_env(log=_progress)
        if args.command == "up":
            print(lab.up())
        elif args.command == "down":
            print(lab.down(purge=args.purge))
        elif args.command == "status":
            return _status(lab)
        elif args.command == "fault":
            return _fault(lab, args)
        return 0
    except LabError as error:
        print(f"lab: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `| head` closed stdout: not an error of the lab
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
