"""The breach response's firewall lock, loaded by the real nft into network namespaces of their own
(never the machine's): packets from outside the management addresses reach only the SSH port, the
management addresses reach everything, and loading it twice leaves one lock. Root only.

Two namespaces joined by a veth pair stand for the box (`inside`) and the network (`outside`, with one
management address and one stranger's address); the lock is the suite's own ruleset text, loaded as the
ladder loads it: `nft -f -` through Box.run with the ruleset on standard input, no file in between.
Without root: the ladder's step hands the ruleset to that one command, and writes no file on the box.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from conftest import ROOT
from remediations import firewall

NEEDS = [tool for tool in ("nft", "ip", "unshare", "nsenter") if shutil.which(tool) is None]
WHY_NOT = ("needs root to make network namespaces" if os.geteuid() != 0 else
           f"needs {', '.join(NEEDS)} (Debian: nftables, iproute2, util-linux)" if NEEDS else None)
in_namespaces = pytest.mark.skipif(WHY_NOT is not None, reason=str(WHY_NOT))

SSH, OTHER = 2222, 8080
PROBE = textwrap.dedent("""
    import socket, sys
    source, port = sys.argv[1], int(sys.argv[2])
    with socket.socket() as s:
        s.settimeout(1.5)
        s.bind((source, 0))
        try:
            s.connect(("10.9.0.1", port))
            print("open")
        except OSError:
            print("closed")
""")
SCRIPT = textwrap.dedent("""
    set -eu
    ip link set lo up
    unshare --net sh -c 'ip link set lo up; echo $$ > {tmp}/inside.pid; exec sleep 60' >/dev/null 2>&1 &
    while [ ! -s {tmp}/inside.pid ]; do sleep 0.05; done
    inside=$(cat {tmp}/inside.pid)
    inns() {{ nsenter --net=/proc/$inside/ns/net "$@"; }}
    ip link add v-out type veth peer name v-in netns $inside
    ip addr add 10.9.0.2/24 dev v-out; ip addr add 10.9.0.3/24 dev v-out; ip link set v-out up
    inns ip addr add 10.9.0.1/24 dev v-in; inns ip link set v-in up
    for port in {ssh} {other}; do inns python3 -c "
    import socket, time
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(('10.9.0.1', $port)); s.listen(8); time.sleep(30)" >/dev/null 2>&1 & listeners="${{listeners:-}} $!"; done
    sleep 0.3
    echo "before $(python3 {tmp}/probe.py 10.9.0.3 {other})"
    inns env PYTHONPATH={root} {python} {tmp}/lock.py
    inns env PYTHONPATH={root} {python} {tmp}/lock.py
    echo "tables $(inns nft list tables | grep -c {table})"
    echo "stranger-ssh $(python3 {tmp}/probe.py 10.9.0.3 {ssh})"
    echo "stranger-other $(python3 {tmp}/probe.py 10.9.0.3 {other})"
    echo "management-other $(python3 {tmp}/probe.py 10.9.0.2 {other})"
    inns nft delete table inet {table}
    echo "unlocked $(python3 {tmp}/probe.py 10.9.0.3 {other})"
    kill $inside $listeners 2>/dev/null || true
""")
LOCK = textwrap.dedent("""
    import sys
    import testinfra
    from probes.host import Box
    from remediations import firewall
    box = Box("inside", testinfra.get_host("local://"), "python3", sudo=False, timeout=30)
    done = box.run(firewall.lock_argv(), privileged=True, input=firewall.ruleset(["10.9.0.2/32"], {ssh}))
    sys.exit(done.returncode and f"lock: exit {{done.returncode}}: {{done.stderr}}")
""")


@pytest.fixture(scope="module")
def seen(tmp_path_factory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("firewall")
    (tmp / "probe.py").write_text(PROBE)
    (tmp / "lock.py").write_text(LOCK.format(ssh=SSH))
    script = SCRIPT.format(tmp=tmp, ssh=SSH, other=OTHER, table=firewall.TABLE, root=ROOT, python=sys.executable)
    done = subprocess.run(["unshare", "--net", "--fork", "sh", "-c", script], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return dict(line.split(" ", 1) for line in done.stdout.splitlines() if " " in line)


@in_namespaces
def test_without_the_lock_everything_is_reachable(seen):
    assert seen["before"] == "open"


@in_namespaces
def test_the_lock_keeps_the_ssh_port_open_to_anyone(seen):
    assert seen["stranger-ssh"] == "open"


@in_namespaces
def test_the_lock_drops_a_stranger_elsewhere(seen):
    assert seen["stranger-other"] == "closed"


@in_namespaces
def test_the_lock_keeps_everything_open_to_the_management_addresses(seen):
    assert seen["management-other"] == "open"


@in_namespaces
def test_loading_the_lock_twice_leaves_one_table_and_unlocking_removes_it(seen):
    assert seen["tables"] == "1" and seen["unlocked"] == "open"


class RecordingBox:
    """A box that records what it is asked to run, and refuses to write any file."""

    local, sudo = False, True

    def __init__(self):
        self.runs: list[tuple[list[str], bool, str | None]] = []

    def run(self, argv, *, privileged=False, timeout=None, input=None):
        self.runs.append((argv, privileged, input))
        return subprocess.CompletedProcess(argv, 0, "", "")

    def call(self, reader, *args):
        raise AssertionError(f"the lock wrote through {reader.__name__}{args}: a file root would then load")


def test_the_ladder_hands_the_ruleset_to_nft_on_its_standard_input_and_writes_no_file(tmp_path):
    from configuration import load
    from decision.incidents import Incident
    from remediations.emergency import Ladder

    path = tmp_path / "maintenance.toml"
    path.write_text('[emergency.responses]\nfirewall_lock = true\nmanagement_addresses = ["10.1.2.0/24"]\n'
                    "ssh_port = 2222\n")
    box = RecordingBox()
    ctx = type("Ctx", (), {"settings": load(path), "box": box, "streak": 5, "run_id": "run", "check": "SEC-001"})()
    ladder = Ladder(ctx, "breach", Incident(box="nuc", opened_at=0, opened_by="SEC-001"), dry=False)
    ladder.lock_firewall()
    assert box.runs == [(["nft", "-f", "-"], True, firewall.ruleset(["10.1.2.0/24"], 2222))], ladder.lines
    assert ladder.incident.firewall_locked and ladder.lines[-1].startswith("firewall lock: done")
