"""The summary's words and the digest's order, without a run: what is cut says so, what is still
wrong comes first, what was fixed never raises a digest's severity. First contact, finding 9 and
"alerts worth reading"."""

from __future__ import annotations

from alerts.message import Alert
from core.vocabulary import AlertKind, Prop, Verdict
from reports.summary import WIDTH, cut
from reports.tally import Tally


def test_a_line_that_is_cut_says_so_and_how_much():
    line = "x" * (WIDTH + 123)
    shown = cut(line)
    assert shown.startswith("x" * WIDTH) and shown.endswith("[cut: 123 more characters in the HTML report]")
    assert cut("short") == "short"


def finding(verdict: Verdict, check_id: str) -> dict:
    return {Prop.VERDICT: verdict, Prop.CHECK_ID: check_id, Prop.SEVERITY: "warning"}


def test_the_tally_counts_in_the_operators_words_and_sorts_still_wrong_first():
    tally = Tally()
    for nodeid, verdict in (("a", Verdict.FIXED), ("b", Verdict.PASSED), ("c", Verdict.FAILED),
                            ("d", Verdict.UNKNOWN), ("e", Verdict.SKIPPED)):
        tally.observe(nodeid, finding(verdict, nodeid.upper()))
    assert tally.overview() == "5 checks: 1 passed, 1 fixed, 1 failed, 1 unknown, 1 skipped"
    assert [nodeid for nodeid, _ in tally.findings(Verdict.FAILED)] == ["c"]
    assert tally.status(alerts_undelivered=False) == 11


def alert(kind: AlertKind, severity: str, check_id: str, box: str = "nuc-1") -> Alert:
    return Alert(check_id=check_id, severity=severity, kind=kind, title=check_id, message="m", why="w", box=box)


def test_a_digest_lists_what_is_still_wrong_before_what_was_fixed():
    digest = Alert.digest([alert(AlertKind.FIXED, "critical", "SVC-001"), alert(AlertKind.PROBLEM, "warning", "ERR-001")],
                          "daily run")
    assert digest.title == "daily run: 1 still wrong, 1 fixed" and digest.box == "nuc-1"
    assert digest.message.index("Still wrong:") < digest.message.index("Fixed:")
    assert digest.severity == "warning", "a fixed critical finding is done: it does not make the digest critical"


def test_a_digest_of_fixed_findings_only_is_information():
    assert Alert.digest([alert(AlertKind.FIXED, "critical", "SVC-001")], "daily run").severity == "info"


def test_a_digest_over_several_boxes_names_each_on_its_line():
    digest = Alert.digest([alert(AlertKind.PROBLEM, "warning", "ERR-001", "nuc-1"),
                           alert(AlertKind.PROBLEM, "warning", "ERR-001", "nuc-2")], "daily run")
    assert digest.box == "" and "warning: nuc-1: ERR-001" in digest.message and "warning: nuc-2: ERR-001" in digest.message
