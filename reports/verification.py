"""What `make verify-trail` finds: the ledger's chain (core/ledger.py) walked line by line, and every file it
names checked on disk.

`verify` says what was edited, removed, inserted, swapped or moved, telling pruned reports (a prune line
names them) apart from removed ones. A chain proves the order and integrity of what precedes its last line:
whoever can rewrite the whole file from some line on can forge a consistent tail, so keep the head `verify`
prints (seq and hash) somewhere else too.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from core.ledger import LEDGER, TORN_PREFIX, digest, file_sha256, ledger_path, parse_line
from core.listing import listed
from core.vocabulary import LedgerKind, TrailFinding
from reports.files import REPORT_SUFFIXES, stamp_of


@dataclass(frozen=True)
class Finding:
    kind: TrailFinding
    text: str
    names: tuple[str, ...] = ()  # the report or torn files it is about

    def __str__(self) -> str:
        return f"{self.kind}: {self.text}"


@dataclass
class Verification:
    directory: Path
    lines: int = 0
    head: dict | None = None
    findings: list[Finding] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.damage

    @property
    def damage(self) -> list[Finding]:
        return [finding for finding in self.findings if finding.kind.is_damage]

    @property
    def notes(self) -> list[Finding]:
        return [finding for finding in self.findings if not finding.kind.is_damage]

    def add(self, kind: TrailFinding, text: str, names: tuple[str, ...] = ()) -> None:
        self.findings.append(Finding(kind, text, names))


@dataclass(eq=False)
class _Line:
    number: int  # in the file, from 1
    entry: dict
    parent: _Line | None = None
    children: list[_Line] = field(default_factory=list)
    inserted: bool = False

    @property
    def seq(self) -> int:
        return self.entry["seq"]

    def said(self) -> str:
        entry = self.entry
        about = f", {entry['cadence']} run" if entry.get("kind") == LedgerKind.RUN and "cadence" in entry else ""
        return f"line {self.number} (seq {self.seq}, {entry.get('kind', '?')}{about}, at {entry.get('at', '?')})"


def verify(directory: Path) -> Verification:
    """Walk the ledger in `directory` and the files it names. OSError when it cannot be read."""
    directory = Path(directory)
    result = Verification(directory)
    try:
        data = ledger_path(directory).read_bytes()
    except FileNotFoundError:
        reports = _suite_reports(directory)
        if reports:
            result.add(TrailFinding.REMOVED, f"there is no {LEDGER} in {directory}, but {len(reports)} report(s): the "
                       f"ledger was removed, or no run has recorded one since the audit trail began (the next run "
                       f"starts it): {listed(sorted(reports))}", tuple(sorted(reports)))
        return result
    pieces = data.split(b"\n")
    torn = pieces.pop()
    lines = _parse_all(pieces, result)
    if torn:
        result.add(TrailFinding.TORN, f"{LEDGER} ends with an incomplete line of {len(torn)} byte(s) after line "
                   f"{len(pieces)}: a write cut short (a power cut, a full disk); the next append keeps it aside "
                   f"in {TORN_PREFIX}<time> and records a repair line")
    kept = _link(lines, result)
    _check_chain(kept, result)
    _check_order(kept, result)
    _check_files(directory, kept, result)
    result.lines = len(pieces)
    result.head = max(kept, key=lambda line: line.seq).entry if kept else None
    return result


def _parse_all(pieces: list[bytes], result: Verification) -> list[_Line]:
    lines, seen = [], {}
    for number, raw in enumerate(pieces, 1):
        entry = parse_line(raw)
        if entry is None:
            result.add(TrailFinding.EDITED, f"line {number} is not a ledger line ({raw[:60]!r}): written over or "
                       f"made up")
            continue
        line = _Line(number, entry)
        if digest(entry) != entry["hash"]:
            result.add(TrailFinding.EDITED, f"{line.said()} was edited: its content no longer matches its hash")
        if entry["hash"] in seen:
            result.add(TrailFinding.INSERTED, f"{line.said()} was inserted: a copy of line {seen[entry['hash']]}")
            continue
        seen[entry["hash"]] = number
        lines.append(line)
    return lines


def _link(lines: list[_Line], result: Verification) -> list[_Line]:
    """Each line to the one its `prev` names; where two lines name the same one, the line the rest of
    the chain continues from stays and the other (with whatever follows it) was inserted."""
    by_hash = {line.entry["hash"]: line for line in lines}
    firsts = []
    for line in lines:
        line.parent = by_hash.get(line.entry["prev"])
        if line.parent is not None:
            line.parent.children.append(line)
        elif line.entry["prev"] == "":
            firsts.append(line)
    sizes = _subtree_sizes(lines)
    circle = [line for line in lines if id(line) not in sizes]
    if circle:  # only hashes written by hand can name each other in a circle
        for line in circle:
            line.inserted = True
        result.add(TrailFinding.INSERTED, "lines whose prev and hash name each other in a circle were made up: "
                   + listed(line.said() for line in circle))
    for parent, children in [(None, firsts), *((line, line.children) for line in lines if not line.inserted)]:
        if len(children) < 2:
            continue
        expected = parent.seq + 1 if parent else 1
        keep = max(children, key=lambda child: (sizes.get(id(child), 0), child.seq == expected, -child.number))
        for child in children:
            if child is not keep:
                follows = f"follow {parent.said()}" if parent else "be the first line"
                followers = _mark_inserted(child)
                more = f", and {len(followers) - 1} line(s) chained onto it" if len(followers) > 1 else ""
                result.add(TrailFinding.INSERTED, f"{child.said()} was inserted{more}: it claims to {follows}, "
                           f"which the chain goes on from line {keep.number} instead")
        if parent is not None:
            parent.children = [keep]
    kept = [line for line in lines if not line.inserted]
    _isolated_insertions(kept, result)
    return [line for line in kept if not line.inserted]


def _subtree_sizes(lines: list[_Line]) -> dict[int, int]:
    """How many lines hang from each line (itself included), walked from the chains' starts."""
    order, stack = [], [line for line in lines if line.parent is None]
    while stack:
        current = stack.pop()
        order.append(current)
        stack.extend(current.children)
    sizes: dict[int, int] = {}
    for line in reversed(order):
        sizes[id(line)] = 1 + sum(sizes[id(child)] for child in line.children)
    return sizes


def _mark_inserted(line: _Line) -> list[_Line]:
    marked, stack = [], [line]
    while stack:
        current = stack.pop()
        if not current.inserted:
            current.inserted = True
            marked.append(current)
            stack.extend(current.children)
    return marked


def _isolated_insertions(kept: list[_Line], result: Verification) -> None:
    """A line linked to no line either way, whose seq another line has or which stands out of order, was
    put there: not a survivor between two removals."""
    by_seq = defaultdict(list)
    for line in kept:
        by_seq[line.seq].append(line)
    for index, line in enumerate(kept):
        if line.parent is not None or line.children or line.entry["prev"] == "" or len(kept) == 1:
            continue
        twin = [other for other in by_seq[line.seq] if other is not line]
        before = [other.seq for other in kept[:index]]
        after = [other.seq for other in kept[index + 1:]]
        out_of_order = (before and max(before) > line.seq) or (after and min(after) < line.seq)
        if twin or out_of_order:
            line.inserted = True
            why = f"line {twin[0].number} has its seq" if twin else "it stands out of order and links to no line"
            result.add(TrailFinding.INSERTED, f"{line.said()} was inserted: {why}")


def _segments(kept: list[_Line]) -> list[list[_Line]]:
    segments = []
    for root in (line for line in kept if line.parent is None):
        segment, current = [root], root
        while current.children:
            current = current.children[0]
            segment.append(current)
        segments.append(segment)
    return sorted(segments, key=lambda segment: segment[0].seq)


def _check_chain(kept: list[_Line], result: Verification) -> None:
    segments = _segments(kept)
    if not segments:
        return
    first = segments[0][0]
    if first.entry["prev"] != "":
        if first.seq > 1:
            result.add(TrailFinding.REMOVED, f"the ledger's first line(s), seq {_span(1, first.seq - 1)}, were "
                       f"removed: it begins at {first.said()}, whose prev names a line that is not there")
        else:
            result.add(TrailFinding.EDITED, f"{first.said()} does not start the chain: its prev names a line "
                       f"that is not there")
    for segment in segments:
        for parent, child in zip(segment, segment[1:], strict=False):
            if child.seq != parent.seq + 1:
                result.add(TrailFinding.EDITED, f"{child.said()} follows seq {parent.seq} in the chain but its seq "
                           f"says otherwise: its seq was rewritten")
    for before, after in zip(segments, segments[1:], strict=False):
        last, root = before[-1], after[0]
        if root.entry["prev"] == "":
            result.add(TrailFinding.INSERTED, f"{root.said()} was inserted: a second first line of a chain")
        elif root.seq > last.seq + 1:
            result.add(TrailFinding.REMOVED, f"ledger line(s) seq {_span(last.seq + 1, root.seq - 1)} were removed: "
                       f"the seq jumps from {last.seq} (line {last.number}) to {root.seq} (line {root.number}) "
                       f"and the hash chain breaks there")
        elif root.seq == last.seq + 1:
            result.add(TrailFinding.EDITED, f"the chain breaks between seq {last.seq} and seq {root.seq}: the prev "
                       f"of {root.said()} names a hash no line has: {last.said()} was rewritten with its hash "
                       f"recomputed, or that prev was edited")
        else:
            result.add(TrailFinding.INSERTED, f"{root.said()} repeats a seq the chain already has and links to "
                       f"no line: it was put there")


def _span(first: int, last: int) -> str:
    return str(first) if first == last else f"{first}..{last}"


def _check_order(kept: list[_Line], result: Verification) -> None:
    """The file's order against the seq's: two lines exchanged, or lines moved."""
    seqs = [line.seq for line in kept]
    expected = sorted(seqs)
    if seqs == expected:
        return
    wrong = [index for index, (seq, want) in enumerate(zip(seqs, expected, strict=True)) if seq != want]
    if len(wrong) == 2:
        one, other = (kept[index] for index in wrong)
        result.add(TrailFinding.SWAPPED, f"ledger lines seq {other.seq} and seq {one.seq} were swapped: seq "
                   f"{one.seq} is at line {one.number}, seq {other.seq} at line {other.number}")
        return
    moved = [kept[index] for index in wrong]
    result.add(TrailFinding.MOVED, "ledger lines were moved out of order: " +
               listed(f"seq {line.seq} at line {line.number}" for line in moved))


def _check_files(directory: Path, kept: list[_Line], result: Verification) -> None:
    """Every report a run line names: there with its SHA-256, or pruned as a prune line says."""
    pruned: dict[str, int] = {}
    for line in kept:
        if line.entry.get("kind") == LedgerKind.PRUNE:
            pruned.update((name, line.seq) for name in line.entry.get("files", ()) if isinstance(name, str))
    named: set[str] = set()
    by_prune: dict[int, list[str]] = defaultdict(list)
    for line in kept:
        kind = line.entry.get("kind")
        if kind == LedgerKind.RUN:
            for report in (line.entry.get("reports") or {}).values():
                if isinstance(report, dict) and isinstance(report.get("name"), str):
                    named.add(report["name"])
                    _check_report(directory, line, report, pruned, by_prune, result)
        elif kind == LedgerKind.REPAIR:
            _check_torn(directory, line, result)
    for seq, names in sorted(by_prune.items()):
        result.add(TrailFinding.PRUNED, f"{len(names)} report(s) removed by retention, as prune line seq {seq} "
                   f"says: {listed(names)}", tuple(names))
    _check_unrecorded(directory, kept, named, result)


def _check_report(directory: Path, line: _Line, report: dict, pruned: dict[str, int],
                  by_prune: dict[int, list[str]], result: Verification) -> None:
    name, path = report["name"], directory / report["name"]
    of = f"of run seq {line.seq} ({line.entry.get('cadence', '?')}, started {line.entry.get('started', '?')})"
    try:
        actual = file_sha256(path)
    except FileNotFoundError:
        if name in pruned:
            by_prune[pruned[name]].append(name)
        else:
            result.add(TrailFinding.REMOVED, f"report {name} {of} was removed: it is missing and no prune line "
                       f"names it", (name,))
        return
    if actual != report.get("sha256"):
        result.add(TrailFinding.EDITED, f"report {name} {of} was edited: its SHA-256 is {actual[:16]}..., the "
                   f"ledger recorded {str(report.get('sha256'))[:16]}...", (name,))


def _check_torn(directory: Path, line: _Line, result: Verification) -> None:
    torn = line.entry.get("torn") or {}
    name = str(torn.get("name", ""))
    try:
        actual = file_sha256(directory / name)
    except (FileNotFoundError, IsADirectoryError):
        result.add(TrailFinding.REMOVED, f"{name or 'the torn bytes'}, set aside by repair {line.said()}, was "
                   f"removed", (name,))
        return
    if actual != torn.get("sha256"):
        result.add(TrailFinding.EDITED, f"{name}, set aside by repair {line.said()}, was edited", (name,))
    else:
        result.add(TrailFinding.REPAIRED, f"an incomplete line of {torn.get('bytes')} byte(s) was set aside in "
                   f"{name} by repair {line.said()}", (name,))


def _check_unrecorded(directory: Path, kept: list[_Line], named: set[str], result: Verification) -> None:
    """Reports on disk that no run line names: added afterwards, or their run's line removed (or a run
    killed between publishing its reports and recording them). Those older than the ledger predate it."""
    began = min((_when(line.entry.get("at")) for line in kept), default=None)
    aside_named = {str((line.entry.get("torn") or {}).get("name")) for line in kept
                   if line.entry.get("kind") == LedgerKind.REPAIR}
    strays, older = [], []
    for name, when in sorted(_suite_reports(directory).items()):
        if name in named:
            continue
        (older if began is not None and when is not None and when < began else strays).append(name)
    if strays:
        result.add(TrailFinding.UNRECORDED, f"{len(strays)} report(s) named by no run line: added afterwards, "
                   f"or their run's line was removed: {listed(strays)}", tuple(strays))
    if older:
        result.add(TrailFinding.BEFORE_LEDGER, f"{len(older)} report(s) older than the ledger's first line",
                   tuple(older))
    orphans = sorted(path.name for path in directory.glob(f"{TORN_PREFIX}*") if path.name not in aside_named)
    if orphans:
        result.add(TrailFinding.SET_ASIDE, f"torn bytes kept aside by an append that was stopped before it recorded "
                   f"the repair (they never were a whole line): {listed(orphans)}", tuple(orphans))


def _suite_reports(directory: Path) -> dict[str, datetime.datetime | None]:
    """The report files the suite names (`<cadence>-YYYYmmdd-HHMMSS-mmm.html|.xml`), with their run's time."""
    found = {}
    try:
        paths = list(directory.iterdir())
    except FileNotFoundError:
        return {}
    for path in paths:
        stamp = stamp_of(path.stem) if path.suffix in REPORT_SUFFIXES else None
        if stamp is not None and path.is_file():
            found[path.name] = stamp[1].astimezone()  # the stem is the run's local time
    return found


def _when(text) -> datetime.datetime | None:
    try:
        return datetime.datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
