"""`python -m commands VERB [ARGS]`: the operator's commands, one command line; the make targets call it.

`python -m commands --help` lists the verbs, `python -m commands VERB --help` says what one does. A module of
this package that defines VERB (commands/cli.py `Verb`) is the verb of its own name (commands/attest.py is
`attest`), so a new verb is a new module and nothing else. What verbs share is commands/cli.py's: --config (or
MAINTENANCE_CONFIG), --box, --reports-dir, the configuration read once, the boxes found, their probes.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil

import commands
from commands.cli import Call, Config, Stop, Verb, add_shared, exit_as


def find_verbs() -> dict[str, Verb]:
    """Every module of the package that defines VERB, by name."""
    found = {}
    for module in pkgutil.iter_modules(commands.__path__):
        if module.name.startswith("_"):
            continue
        verb = getattr(importlib.import_module(f"{commands.__name__}.{module.name}"), "VERB", None)
        if verb is not None:
            found[verb.name] = verb
    return dict(sorted(found.items()))


# Found when this module is imported: a caller that then becomes another user need not read the checkout again.
VERBS = find_verbs()


def parsers() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The command line, and each verb's own parser (its usage errors name it)."""
    top = argparse.ArgumentParser(prog="python -m commands", description=__doc__.splitlines()[0])
    subparsers = top.add_subparsers(dest="verb", metavar="VERB", required=True)
    own = {}
    for verb in VERBS.values():
        own[verb.name] = parser = subparsers.add_parser(
            verb.name, help=verb.summary, description=verb.doc, formatter_class=argparse.RawDescriptionHelpFormatter)
        verb.arguments(parser)
        add_shared(parser, verb)
    return top, own


def main(argv: list[str] | None = None) -> int:
    top, own = parsers()
    args = top.parse_args(argv)
    verb = VERBS[args.verb]
    call = Call(verb, own[verb.name], args)
    try:
        if verb.config == Config.REQUIRED:
            call.require_config()
        return verb.run(call)
    except Stop as stop:
        return stop.status
    finally:
        call.close()


if __name__ == "__main__":
    exit_as(main())
