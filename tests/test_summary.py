"""The summary's words and the digest's order, without a run: what is cut says so, what is still
wrong comes first, what was fixed never raises a digest's severity. First contact, finding 9 and
"alerts worth reading"."""

from __future__ import annotations

from alerts.dispatch import Alerter
from alerts.message import Alert
from configuration import Settings, load
from core.vocabulary import AlertKind, Prop, Verdict
from reports.summary import WIDTH, cut, summarize
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


# -- the digest's level follows how the run ends (issue 18, item 9)

def check(check_id: str, severity: str, verdict: Verdict, kind: AlertKind | None = None) -> dict:
    """A check's report properties as the controller sees them; no alert kind: none owed (deduplicated)."""
    found = {Prop.CHECK_ID: check_id, Prop.SEVERITY: severity, Prop.VERDICT: verdict, Prop.BOX: "nuc-1",
             Prop.PROBLEM: f"{check_id} is wrong"}
    return {**found, Prop.ALERT: kind} if kind else found


def digest_after(*checks: dict) -> Alert:
    """What the run's Alerter sends as its digest once every check was observed."""
    alerter = Alerter(Settings(), "daily run")
    sent: list[Alert] = []
    alerter.send = sent.append
    for properties in checks:
        alerter.observe(properties, properties[Prop.CHECK_ID].lower())
    alerter.finish()
    [digest] = [a for a in sent if a.kind == AlertKind.DIGEST]
    return digest


def test_a_digest_of_a_fix_is_critical_when_a_critical_check_still_fails():
    """First contact: "daily run: 1 fixed" at info while the run exited 11 (its failure told in an earlier run)."""
    digest = digest_after(check("SVC-001", "critical", Verdict.FIXED, AlertKind.FIXED),
                          check("DB-001", "critical", Verdict.FAILED))
    assert digest.severity == "critical"
    assert digest.title == "daily run: 1 fixed; the run ends with 1 failed"
    assert digest.message.endswith("The run ends with 1 failed: the report has every one.")
    carried = digest_after(check("ERR-002", "warning", Verdict.FAILED, AlertKind.PROBLEM),
                           check("SVC-001", "critical", Verdict.FIXED, AlertKind.FIXED))
    assert (carried.severity, carried.title) == ("warning", "daily run: 1 still wrong, 1 fixed"), "nothing more to say"


def test_a_digest_is_at_least_a_warning_when_a_check_could_not_look():
    digest = digest_after(check("SVC-001", "critical", Verdict.FIXED, AlertKind.FIXED),
                          check("DB-001", "critical", Verdict.UNKNOWN))
    assert (digest.severity, digest.title) == ("warning", "daily run: 1 fixed; the run ends with 1 unknown")


def test_a_failed_close_is_told_at_once_critical_and_to_every_channel():
    """Money (issue 18, item 10): whatever the check's own alert policy decided (here: none owed)."""
    alerter = Alerter(Settings(), "emergency run")
    sent: list[Alert] = []
    alerter.send = sent.append
    held = "close all positions failed (POST /close: timed out); the agent now reports 3 open position(s)"
    alerter.observe({**check("EMG-007", "warning", Verdict.FAILED), Prop.AT_RISK: held}, "test_health")
    [told] = sent
    assert (told.severity, told.kind, told.emergency, told.box) == ("critical", "human-needed", True, "nuc-1")
    assert told.message.startswith(held) and "by hand" in told.message


# -- a box watched from here whose alerts reach nobody (issue 18, item 9)

def summary_notes(tmp_path, text: str) -> list[str]:
    path = tmp_path / "maintenance.toml"
    path.write_text(text)
    settings = load(path)
    return summarize("daily run", Tally(), Alerter(settings, "daily run"), []).notes


REMOTE = '[host]\nbackend = "ssh://trading-maint@192.0.2.10:22"\n'
UNHEARD = "alerts go only to a file on this machine ([alerts] file"


def test_a_remote_box_with_only_the_file_channel_is_said_once(tmp_path):
    notes = summary_notes(tmp_path, REMOTE)
    assert [note for note in notes if UNHEARD in note] == notes and len(notes) == 1, notes
    assert "configure a channel that reaches a person" in notes[0] and "trading-box is watched from here" in notes[0]


def test_a_channel_that_reaches_a_person_or_a_local_box_says_nothing_of_it(tmp_path, monkeypatch):
    monkeypatch.setenv("E2E_TOKEN", "123:abc")
    telegram = '[alerts.telegram]\nbot_token_env = "E2E_TOKEN"\nchat_id = "-100"\n'
    assert summary_notes(tmp_path, REMOTE + telegram) == []
    assert summary_notes(tmp_path, '[remediation]\nmode = "plan"\n') == []
