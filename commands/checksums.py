"""`make record-checksums CONFIG=PATH`: the baseline the critical-file check (SEC-003) compares with.

    python -m commands checksums record --config PATH [--box NAME]
    python -m commands checksums show --config PATH [--box NAME]

`record` reads the sha256 of every [security] critical_files entry on the box the configuration
names (this machine for `local://`, its python3 over SSH otherwise) and writes them to [security]
checksums_file on that box, in sha256sum's format (`sha256sum -c FILE` checks it by hand), mode 600,
wholly old or wholly new; a file that cannot be read records nothing. Record once the files are known
good, and again after every intended change. `show` compares the files with the baseline; its status
is 0 when every file matches, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys

from commands import cli
from configuration import Settings
from core.unread import CouldNotRead
from probes.host import ReaderFailed
from probes.remote import securityscan

NOT_DONE = 1


def record(call: cli.Call, settings: Settings) -> tuple[int, str]:
    """Writes the baseline on the box: (status, what to tell the operator)."""
    name, config = settings.host.name, settings.security
    if not config.critical_files:
        return NOT_DONE, f"{name}: nothing recorded: [security] critical_files is empty"
    box = call.box(settings)
    problem = box.reachable()
    if problem:
        return NOT_DONE, f"{name}: nothing recorded: {problem}"
    try:
        recorded = box.call(securityscan.record_checksums, [str(path) for path in config.critical_files],
                            str(config.checksums_file))
    except FileNotFoundError as error:
        return NOT_DONE, (f"{name}: nothing recorded: {error}. Restore the file, or remove it from [security] "
                          f"critical_files")
    except PermissionError as error:
        return NOT_DONE, (f"{name}: nothing recorded: {error}. Run this as root on the box, or reach it as a user "
                          f"who may read every critical file and write {config.checksums_file.parent}")
    except (OSError, CouldNotRead, ReaderFailed) as error:
        return NOT_DONE, f"{name}: nothing recorded: {error}"
    lines = [f"{name}: recorded {len(recorded)} file(s) in {config.checksums_file} (mode 600):"]
    lines += [f"  {digest}  {path}" for path, digest in recorded]
    return 0, "\n".join(lines)


def show(call: cli.Call, settings: Settings) -> tuple[int, str]:
    """Each critical file against the baseline: unchanged, CHANGED, or why it could not be compared."""
    name, config = settings.host.name, settings.security
    box = call.box(settings)
    problem = box.reachable()
    if problem:
        return NOT_DONE, f"{name}: {problem}"
    try:
        reading = box.call(securityscan.file_digests, [str(path) for path in config.critical_files],
                           str(config.checksums_file))
    except (OSError, CouldNotRead, ReaderFailed) as error:
        return NOT_DONE, f"{name}: {error}"
    baseline = reading["baseline"]
    if "error" in baseline:
        return NOT_DONE, (f"{name}: no baseline at {config.checksums_file} ({baseline['message']}): "
                          f"make record-checksums CONFIG={settings.source}")
    lines, status = [f"{name}: {config.checksums_file}"], 0
    for path, now in reading["files"].items():
        recorded = baseline["recorded"].get(path)
        if "error" in now:
            state = f"cannot be read: {now['message']}"
        elif recorded is None:
            state = "not recorded"
        else:
            state = "unchanged" if now["sha256"] == recorded else "CHANGED"
        status = status if state == "unchanged" else NOT_DONE
        lines.append(f"  {state:<10} {path}")
    return status, "\n".join(lines)


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("record", "show"))


def run(call: cli.Call) -> int:
    action = call.args.action

    def on(box: Settings) -> int:
        status, said = (record if action == "record" else show)(call, box)
        print(said, file=sys.stdout if status == 0 or action == "show" else sys.stderr)
        return status

    return call.each_box(on)


VERB = cli.Verb(
    "checksums", "record, or compare with, the critical files' baseline (make record-checksums, show-checksums)",
    __doc__, arguments, run, boxes=cli.Boxes.EACH)
