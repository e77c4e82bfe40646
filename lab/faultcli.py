"""`fault list|inject|clear` for the lab and for a box: one command, two catalogues."""

from __future__ import annotations

import sys
from types import ModuleType


def fault_command(target, args, catalogue: ModuleType, prog: str, what: str, available=None) -> int:
    """`target`: a Lab or a Box (inject, clear); `catalogue`: its fault module (FAULTS, ALIASES, resolve);
    `available`: the names it can inject now, where some need what it may lack (a tmpfs)."""
    if args.action == "list":
        for name, fault in catalogue.FAULTS.items():
            note = "" if available is None or name in available else "  [unavailable: no tmpfs mounted]"
            print(f"{name:<32} {fault.description}{note}")
        for alias, real in catalogue.ALIASES.items():
            print(f"{alias:<32} alias of {real}")
        return 0
    if args.action == "inject":
        target.inject(args.name)
        print(f"injected {catalogue.resolve(args.name).name}")
        return 0
    if args.all == (args.name is not None):
        print(f"{prog} fault clear: give a fault name or --all (not both)", file=sys.stderr)
        return 2
    target.clear(None if args.all else args.name)
    print("cleared " + (f"all faults; the {what} is healthy" if args.all else catalogue.resolve(args.name).name))
    return 0
