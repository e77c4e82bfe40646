"""The start every operator command shares (`python -m commands VERB`, commands/__main__.py): the verb as its
module registers it, the options verbs share, the configuration read once, the boxes found, a probe per box
made once, the ledger line written. A verb's own module holds only what is its own."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import NoReturn

from filelock import Timeout

from configuration import ENV_VAR, ConfigError, Settings, load, secretsfile
from core import ledger
from core.vocabulary import ExitStatus, LedgerKind
from probes.cache import ProbeCache
from probes.host import Box, box_of
from probes.services import ServiceManager, service_manager


class Config(StrEnum):
    """Whether a verb takes --config (MAINTENANCE_CONFIG when not given)."""

    REQUIRED = "required"
    OPTIONAL = "optional"  # some of its actions need none (`schedule uninstall`)
    NONE = "none"


class Boxes(StrEnum):
    """What --box means to a verb that acts on boxes."""

    ONE = "one"  # it acts on one box: --box names it when the configuration names several
    EACH = "each"  # it acts on every box in turn: --box narrows that to one


@dataclass(frozen=True)
class Verb:
    """One verb of `python -m commands`, defined by its module as VERB and named as the module."""

    name: str
    summary: str  # one line, in `python -m commands --help`
    doc: str  # the module's docstring: the verb's --help
    arguments: Callable[[argparse.ArgumentParser], None]  # its own arguments, beside the shared ones
    run: Callable[[Call], int]  # what it does; returns the exit status
    config: Config = Config.REQUIRED
    boxes: Boxes | None = None
    reports_dir: bool = False  # takes --reports-dir (override [reports] dir)
    secrets: bool = True  # reads [schedule] secrets_file as every run does; not for a verb run for another user


def no_arguments(parser: argparse.ArgumentParser) -> None:
    """A verb that takes the shared options only."""


BOX_HELP = {Boxes.ONE: "the box, when the configuration names several",
            Boxes.EACH: "one box of a fleet, by name (default: every box)"}


def add_shared(parser: argparse.ArgumentParser, verb: Verb) -> None:
    """The options that mean the same to every verb that takes them."""
    if verb.config != Config.NONE:
        parser.add_argument("--config", metavar="PATH", help=f"the configuration file (default: ${ENV_VAR})")
    if verb.boxes is not None:
        parser.add_argument("--box", metavar="NAME", help=BOX_HELP[verb.boxes])
    if verb.reports_dir:
        parser.add_argument("--reports-dir", type=Path, metavar="DIR", help="override [reports] dir")


class Stop(Exception):
    """The verb ends here with this status; what went wrong was already said on stderr."""

    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


class Call:
    """One run of a verb: its arguments, and what verbs ask for first, each made once."""

    def __init__(self, verb: Verb, parser: argparse.ArgumentParser, args: argparse.Namespace):
        self.verb, self.parser, self.args = verb, parser, args
        self.probes = ProbeCache()
        self._settings: Settings | None = None

    def error(self, message: str) -> NoReturn:
        """A usage error of this verb: its usage and the message on stderr, status 2."""
        self.parser.error(message)

    @property
    def config_path(self) -> Path | None:
        """--config, else $MAINTENANCE_CONFIG; None when neither names a file."""
        given = getattr(self.args, "config", None) or os.environ.get(ENV_VAR)
        return Path(given).expanduser() if given else None

    def require_config(self) -> Path:
        path = self.config_path
        if path is None:
            self.error(f"--config PATH (or {ENV_VAR}=PATH): the configuration file is needed")
        return path

    def settings(self, refused: str = "") -> Settings:
        """The validated configuration, read once; Stop (status 4) when it is not, after saying why (file, key,
        what is expected), after `refused` when the verb words it its own way."""
        if self._settings is None:
            try:
                self._settings = read_configuration(self.require_config(), secrets=self.verb.secrets)
            except (ConfigError, secretsfile.SecretsRefused) as error:
                print(f"{refused}: {error}" if refused else error, file=sys.stderr)
                raise Stop(ExitStatus.BAD_CONFIGURATION) from None
        return self._settings

    def one_box(self) -> Settings:
        return one_box(self.parser, self.settings(), self.args.box)

    def each_box(self, act: Callable[[Settings], int]) -> int:
        """`act` on the box --box names, or on every box in turn: the worst (highest) status of them."""
        boxes = some_boxes(self.settings(), self.args.box)
        if not boxes:
            raise Stop(ExitStatus.BAD_CONFIGURATION)
        worst = 0
        for box in boxes:
            worst = max(worst, act(box))
        return worst

    def reports_directory(self) -> Path:
        """--reports-dir, else [reports] dir as the runs take it."""
        given = getattr(self.args, "reports_dir", None)
        return given.resolve() if given else self.settings().reports.dir

    def box(self, settings: Settings) -> Box:
        """The box of these settings (a box of a fleet), one for the whole command."""
        return self.probes.get("box", settings.host.name, lambda: box_of(settings))

    def services(self, settings: Settings) -> ServiceManager:
        return self.probes.get("services", settings.host.name, lambda: service_manager(settings))

    def record(self, kind: LedgerKind, fields: dict) -> str:
        return record_in_ledger(self.settings(), kind, fields)

    def close(self) -> None:
        self.probes.close()


def read_configuration(path: Path, secrets: bool = True) -> Settings:
    """The file, validated; with `secrets`, its [schedule] secrets_file read as every run reads it
    (configuration/secretsfile.py). Raises ConfigError or SecretsRefused, each naming what to fix."""
    settings = load(path)
    if secrets:
        secretsfile.use(settings.schedule.secrets_file)
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
    """The operator's act (or one step of it) as a line of the ledger in the configuration's reports directory
    (core/ledger.py, the one operator trail): where it went, for the command's last line. A line that cannot
    be written is said on stderr; the act itself stands."""
    directory = settings.reports.dir
    try:
        entry = ledger.append(directory, kind, fields)
    except (OSError, Timeout, ledger.LedgerError) as error:
        print(f"not recorded in the ledger of {directory}: {error}", file=sys.stderr)
        return "not in the ledger (said above)"
    return f"{ledger.ledger_path(directory)} (seq {entry['seq']})"


def exit_as(status: int) -> NoReturn:
    """Exit with the verb's status; a negative one (a scheduled run's pytest killed by a signal) ends this process
    by the same signal, as its scheduler expects."""
    if status < 0:
        signal.signal(-status, signal.SIG_DFL)
        os.kill(os.getpid(), -status)
    sys.exit(status)
