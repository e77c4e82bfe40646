"""python -m lab box up|down|status|fault list|fault inject NAME|fault clear [NAME|--all]|exec -- CMD...|config-path

BOX_DIR (default <repo>/.box) and BOX_PORT_BASE (default 28000), or --dir and --port-base, choose
where and on which ports. Expected problems (not root, unshare refused, box not up, unknown fault)
print one line and exit non-zero, never with a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
from pathlib import Path

from lab.box import faults
from lab.box.core import BOX_ENV, Box
from lab.box.layout import default_box_dir, default_port_base
from lab.errors import LabError
from lab.faultcli import fault_command


def _progress(message: str) -> None:
    """Progress on stderr; a closed stderr must not abort an `up` half way."""
    with contextlib.suppress(OSError):
        print(f"box: {message}", file=sys.stderr, flush=True)


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lab box", description="a trading box with a real systemd")
    parser.add_argument("--dir", help="the box's directory (BOX_DIR; default <repo>/.box)")
    parser.add_argument("--port-base", type=int, help="first port (BOX_PORT_BASE; default 28000)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("up", help="boot the box, or return a running one to healthy")
    commands.add_parser("down", help="power the box off and check that nothing of it remains")
    commands.add_parser("status", help="systemd's state, the units, their ports, the active faults")
    commands.add_parser("config-path", help="print the path of the box's maintenance.toml")
    run = commands.add_parser("exec", help="run a command inside the box: exec -- CMD [ARG...]")
    run.add_argument("argv", nargs=argparse.REMAINDER)
    fault = commands.add_parser("fault", help="list, inject or clear faults")
    actions = fault.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("list", help="fault names and what each breaks")
    inject = actions.add_parser("inject", help="inject a fault")
    inject.add_argument("name")
    clear = actions.add_parser("clear", help="clear a fault, or all with --all")
    clear.add_argument("name", nargs="?")
    clear.add_argument("--all", action="store_true")
    fleet = commands.add_parser("fleet", help="several boxes and one configuration for all: fleet up N | down")
    fleet.add_argument("action", choices=("up", "down"))
    fleet.add_argument("count", nargs="?", type=int, default=3)
    return parser


def _status(box: Box) -> int:
    status = box.status()
    if not status["up"]:
        stale = " (its last PID 1 is gone; `python -m lab box down` cleans up after it)" if box.record() else ""
        print(f"box in {box.box_dir} is down{stale}")
        return 3
    print(f"box in {box.box_dir} is up (port base {box.ports.base}, PID 1 is machine pid {status['pid1']})")
    print(f"systemd: {status['system']}")
    for name, unit in status["units"].items():
        answers = "answers" if unit["answers"] else "does not answer"
        print(f"  {name:<18} {unit['state']:<20} result={unit['result']:<16} restarts={unit['restarts']:<3} "
              f"port {unit['port']} {answers}")
    if status["failed"]:
        print("failed units:\n  " + status["failed"].replace("\n", "\n  "))
    print("faults: " + (", ".join(status["faults"]) or "none"))
    print(f"config: {status['config']}")
    return 0


def _fault(box: Box, args) -> int:
    return fault_command(box, args, faults, "python -m lab box", "box")


def _exec(box: Box, argv: list[str]) -> int:
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        print("python -m lab box exec -- CMD [ARG...]", file=sys.stderr)
        return 2
    env = {**BOX_ENV, "TERM": os.environ.get("TERM", "dumb")}
    return subprocess.run(box.command(argv), env=env).returncode


def _fleet(args) -> int:
    from lab.box import fleet

    directory = Path(args.dir).resolve() if args.dir else fleet.default_fleet_dir()
    if args.action == "down":
        for said in fleet.down(directory) or [f"no fleet in {directory}"]:
            print(said)
        return 0
    base = args.port_base if args.port_base is not None else fleet.default_port_base()
    config = fleet.up(directory, args.count, base, _progress)
    print(f"fleet of {args.count} box(es) up in {directory}; configuration: {config}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        box_dir = args.dir or default_box_dir()
        port_base = args.port_base if args.port_base is not None else default_port_base()
        box = Box(box_dir, port_base, log=_progress)
        if args.command == "fleet":
            return _fleet(args)
        if args.command == "config-path":
            print(box.config_path)
        elif args.command == "up":
            print(box.up())
        elif args.command == "down":
            print(box.down())
        elif args.command == "status":
            return _status(box)
        elif args.command == "fault":
            return _fault(box, args)
        elif args.command == "exec":
            return _exec(box, args.argv)
        return 0
    except LabError as error:
        print(f"box: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `| head` closed stdout: not an error of the box
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
