"""`make verify-trail CONFIG=PATH [REPORTS_DIR=DIR]`: walk the ledger of the reports directory and the
reports it names, and say exactly what was edited, removed, inserted, swapped or moved.

    python -m commands trail --config PATH [--reports-dir DIR]

The ledger is `ledger.jsonl` in [reports] dir (core/ledger.py; the walk is reports/verification.py). A report
removed by retention is said as pruned (a prune line names it), never as tampered. The last line is the ledger's
head (seq and hash): keep it somewhere else too (a note, the ticket of the review); a ledger rewritten from some
line on is only caught against a head kept elsewhere (--head SEQ:HASH checks the ledger still has it).

Exit status: 0 when the trail is intact; 1 when anything was found (each finding listed: what, which
file or line, which run); 4 when the configuration is not valid; 12 when the ledger cannot be read.
"""

from __future__ import annotations

import argparse
import sys

from commands import cli
from core import ledger
from core.vocabulary import ExitStatus, TrailFinding
from reports import verification

NOT_INTACT = 1


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--head", metavar="SEQ:HASH", help="a head kept elsewhere: the ledger must still have it")


def run(call: cli.Call) -> int:
    head = None
    if call.args.head:
        seq, _, digest = call.args.head.partition(":")
        if not seq.isdigit() or len(digest) != 64:
            call.error(f"--head {call.args.head!r}: expected SEQ:HASH as verify-trail prints the head")
        head = (int(seq), digest)
    call.settings()
    directory = call.reports_directory()
    try:
        result = verification.verify(directory)
    except OSError as error:
        print(f"cannot read the audit trail in {directory}: {error}. Run this as a user who may read [reports] "
              f"dir (the user the schedule runs as, or root)", file=sys.stderr)
        return ExitStatus.COULD_NOT_CHECK
    damage = result.damage
    if head is not None and not any(entry.get("seq") == head[0] and entry.get("hash") == head[1]
                                    for entry in ledger.entries(directory)):
        damage.append(verification.Finding(TrailFinding.EDITED, f"the head kept elsewhere, seq {head[0]} hash "
                                           f"{head[1][:16]}..., is no longer in the ledger: it was rewritten from "
                                           f"there on"))
    for finding in damage:
        print(finding)
    for note in result.notes:
        print(f"note: {note}")
    where = ledger.ledger_path(directory)
    said = (f"head seq {result.head['seq']} hash {result.head['hash']} (at {result.head.get('at')})"
            if result.head else "no line yet")
    if damage:
        print(f"{where}: NOT intact: {len(damage)} finding(s) above; {result.lines} line(s), {said}", file=sys.stderr)
        return NOT_INTACT
    print(f"{where}: intact: {result.lines} line(s), every report there as recorded or pruned; {said}")
    return 0


VERB = cli.Verb(
    "trail", "the ledger and the reports it names, verified (make verify-trail)",
    __doc__, arguments, run, reports_dir=True)
