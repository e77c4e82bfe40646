"""Report file names that sort in the order the runs happened, and publishing them whole.

pytest-html and junitxml write in place; they are given a hidden partial file, renamed into place
once complete, so a run killed while writing never leaves a truncated report under a report's name.
The partial file is made here first (core/rootfiles.py: never through a link, with [reports] shared_mode and
shared_group), so a report holds its mode from its first byte; the plugins only truncate and fill it.
"""

from __future__ import annotations

import datetime
import os
import re
from pathlib import Path

import pytest

from core import rootfiles
from core.atomic import remove_stale_temporaries
from core.ledger import file_sha256
from core.vocabulary import Cadence
from reports import junit

REPORT_PATHS = pytest.StashKey[tuple[Path, Path]]()
STEM = re.compile(rf"^(?P<cadence>{'|'.join(Cadence)})-(?P<stamp>\d{{8}}-\d{{6}})-(?P<ms>\d{{3}})$")
REPORT_SUFFIXES = (".html", ".xml")


def stamp_of(name: str) -> tuple[str, datetime.datetime] | None:
    """(cadence, local time) of a run file's stem, or None for a name the suite did not write."""
    match = STEM.match(name)
    if match is None:
        return None
    try:
        when = datetime.datetime.strptime(match["stamp"], "%Y%m%d-%H%M%S")
    except ValueError:
        return None
    return match["cadence"], when + datetime.timedelta(milliseconds=int(match["ms"]))


def report_stem(cadence: str, now: datetime.datetime) -> str:
    """`daily-20261126-020000-123`: milliseconds, so two runs in one second still sort by time."""
    return f"{cadence}-{now:%Y%m%d-%H%M%S}-{now.microsecond // 1000:03d}"


def reports_directory(config: pytest.Config, directory: Path | str) -> Path:
    """--reports-dir or [reports] dir, a relative one taken from pytest's rootdir (the suite's directory)."""
    directory = Path(directory)
    return directory if directory.is_absolute() else config.rootpath / directory


def report_entry(directory: Path, path: Path) -> dict:
    """{"name", "sha256"} of a report, as its run's line in the ledger names it: its name relative to the reports
    directory (absolute if elsewhere)."""
    try:
        name = str(Path(path).resolve().relative_to(Path(directory).resolve()))
    except ValueError:
        name = str(Path(path).resolve())
    return {"name": name, "sha256": file_sha256(path)}


def choose_report_paths(config: pytest.Config, directory: Path | str, cadence: str, mode: int = rootfiles.PRIVATE,
                        group: str | None = None) -> tuple[Path, Path]:
    """Name reports by cadence and time; an explicit --html/--junitxml from the operator wins. The suite's own
    get their partial files made now, with `mode` and `group`."""
    directory = rootfiles.ensure_directory(reports_directory(config, directory))
    remove_stale_temporaries(directory, (".*.partial",))  # reports of a run killed while writing them
    now = datetime.datetime.now()
    stem = report_stem(cadence, now)
    # Runs of one cadence never overlap (its lock); a name taken all the same moves a millisecond on.
    while any(os.path.lexists(path) for name in (f"{stem}.html", f"{stem}.xml")
              for path in (directory / name, partial(directory / name))):
        now += datetime.timedelta(milliseconds=1)
        stem = report_stem(cadence, now)
    final = {"htmlpath": directory / f"{stem}.html", "xmlpath": directory / f"{stem}.xml"}
    for option, path in final.items():
        if getattr(config.option, option):  # the operator named it: theirs, written as they asked
            final[option] = Path(getattr(config.option, option))
        else:
            os.close(rootfiles.create(partial(path), mode, group))
            setattr(config.option, option, str(partial(path)))
    config.option.self_contained_html = True
    config.stash[REPORT_PATHS] = (final["htmlpath"], final["xmlpath"])
    return config.stash[REPORT_PATHS]


def shared_access(settings) -> tuple[int, str | None]:
    """([reports] shared_mode, shared_group): the mode and group of what another program reads (each run's
    reports, the audit trail's pages, the Prometheus textfile); root's alone without settings."""
    if settings is None:
        return rootfiles.PRIVATE, None
    return settings.reports.shared_mode, settings.reports.shared_group


def partial(path: Path) -> Path:
    return path.with_name(f".{path.name}.partial")


def discard_reports(config: pytest.Config) -> None:
    """A run that checked nothing leaves no report. Called before the session ends: pytest-html is
    unregistered (it writes nothing, announces nothing); junitxml writes its partial file, which
    `remove_partials` takes away after it."""
    for plugin in list(config.pluginmanager.get_plugins()):
        if hasattr(plugin, "_report_path") and config.pluginmanager.is_registered(plugin):  # pytest-html's
            config.pluginmanager.unregister(plugin)


def remove_partials(config: pytest.Config) -> None:
    for path in config.stash.get(REPORT_PATHS, ()):
        partial(path).unlink(missing_ok=True)


def publish_reports(config: pytest.Config) -> None:
    paths = config.stash.get(REPORT_PATHS, None)
    if paths is None:
        return
    for path in paths:
        if partial(path).exists():
            rootfiles.rename(partial(path), path)
    # Their own "generated ... report" lines are printed after this: point them at the published files.
    junit.point_at(config, paths[1])
    for plugin in config.pluginmanager.get_plugins():
        if hasattr(plugin, "_report_path"):  # pytest-html's report object keeps its path there
            plugin._report_path = paths[0]
