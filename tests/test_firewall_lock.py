"""The breach response's firewall lock, loaded by the real nft into network namespaces of their own
(never the machine's): packets from outside the management addresses reach only the SSH port, the
management addresses reach everything, and loading it twice leaves one lock. Root only.

Two namespaces joined by a veth pair stand for the box (`inside`) and the network (`outside`, with one
management address and one stranger's address); the lock is the suite's own ruleset text.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap

import pytest

from remediations import firewall

NEEDS = [tool for tool in ("nft", "ip", "unshare", "nsenter") if shutil.which(tool) is None]
WHY_NOT = ("needs root to make network namespaces" if os.geteuid() != 0 else
           f"needs {', '.join(NEEDS)} (Debian: nftables, iproute2, util-linux)" if NEEDS else None)
pytestmark = pytest.mark.skipif(WHY_NOT is not None, reason=str(WHY_NOT))

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
    inns nft -f {tmp}/lock.nft
    inns nft -f {tmp}/lock.nft
    echo "tables $(inns nft list tables | grep -c {table})"
    echo "stranger-ssh $(python3 {tmp}/probe.py 10.9.0.3 {ssh})"
    echo "stranger-other $(python3 {tmp}/probe.py 10.9.0.3 {other})"
    echo "management-other $(python3 {tmp}/probe.py 10.9.0.2 {other})"
    inns nft delete table inet {table}
    echo "unlocked $(python3 {tmp}/probe.py 10.9.0.3 {other})"
    kill $inside $listeners 2>/dev/null || true
""")


@pytest.fixture(scope="module")
def seen(tmp_path_factory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("firewall")
    (tmp / "probe.py").write_text(PROBE)
    (tmp / "lock.nft").write_text(firewall.ruleset(["10.9.0.2/32"], SSH))
    script = SCRIPT.format(tmp=tmp, ssh=SSH, other=OTHER, table=firewall.TABLE)
    done = subprocess.run(["unshare", "--net", "--fork", "sh", "-c", script], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return dict(line.split(" ", 1) for line in done.stdout.splitlines() if " " in line)


def test_without_the_lock_everything_is_reachable(seen):
    assert seen["before"] == "open"


def test_the_lock_keeps_the_ssh_port_open_to_anyone(seen):
    assert seen["stranger-ssh"] == "open"


def test_the_lock_drops_a_stranger_elsewhere(seen):
    assert seen["stranger-other"] == "closed"


def test_the_lock_keeps_everything_open_to_the_management_addresses(seen):
    assert seen["management-other"] == "open"


def test_loading_the_lock_twice_leaves_one_table_and_unlocking_removes_it(seen):
    assert seen["tables"] == "1" and seen["unlocked"] == "open"
