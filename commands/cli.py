"""What every make target's command does first: read the configuration, and find the box it acts on."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from filelock import Timeout

from configuration import ConfigError, Settings, load, secretsfile
from core.vocabulary import LedgerKind
from reports import ledger


def configuration(path: Path) -> Settings | None:
    """The validated configuration; None when it is not, after saying why (file, key, what is expected). Its
    [schedule] secrets_file is read as every run reads it (configuration/secretsfile.py)."""
    try:
        settings = load(path)
        secretsfile.use(settings.schedule.secrets_file)
    except (ConfigError, secretsfile.SecretsRefused) as error:
        print(error, file=sys.stderr)
        return None
    return settings


def one_box(parser: argparse.ArgumentParser, settings: Settings, name: str | None) -> Settings:
    """The box --box names; without it the configuration's only one: an action on a fleet names its box."""
    names = [box.host.name for box in settings.boxes()]
    if name is None and len(names) > 1:
        parser.error(f"--box NAME: the configuration names {len(names)} boxes ({', '.join(names)})")
    if (name or names[0]) not in names:
        parser.error(f"no box {name!r} in the configuration; boxes: {', '.join(names)}")
    return settings.box(name or names[0])


def some_boxes(settings: Settings, name: str | None) -> list[Settings]:
    """The box --box names, or every box; empty (after saying so) when none has that name."""
    boxes = [box for box in settings.boxes() if name in (None, box.host.name)]
    if not boxes:
        print(f"no box named {name!r} in {settings.source}; boxes: "
              f"{', '.join(box.host.name for box in settings.boxes())}", file=sys.stderr)
    return boxes


def record_in_ledger(settings: Settings, kind: LedgerKind, fields: dict) -> str:
    """The operator's action as a line of the ledger in the configuration's reports directory (beside its
    line in the audit file): where it went, for the command's last line. A line that cannot be written is
    said on stderr; the action itself and its audit line stand."""
    try:
        path, entry = ledger.record(settings, kind, fields)
    except (OSError, Timeout, ledger.LedgerError) as error:
        print(f"not recorded in the ledger of {ledger.reports_directory(settings)}: {error}", file=sys.stderr)
        return "not in the ledger (said above)"
    return f"{path} (seq {entry['seq']})"
