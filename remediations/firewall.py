"""The firewall lock of a breach response, as an nftables table of its own.

The guide runs `ufw deny all`, which also cuts the SSH session the operator needs to look at the box.
The lock drops every new inbound connection except from the management addresses and to the SSH
port; connections already open (the operator's session) and loopback stay. It is one table, so
`make resume` removes exactly it and nothing of the box's own firewall.

The ruleset reaches `nft` on its standard input (`nft -f -`, probes/host.py's `Box.run(input=...)`): root
never loads a file, so no user of the box (the maintenance user over SSH included) can change what it loads
between its writing and its loading, and the sudo rule names exactly `nft -f -`.
"""

from __future__ import annotations

import ipaddress

TABLE = "trading_maintenance_lock"


def ruleset(management_addresses: list[str], ssh_port: int) -> str:
    networks = [ipaddress.ip_network(address, strict=False) for address in management_addresses]
    v4 = ", ".join(str(n) for n in networks if n.version == 4)
    v6 = ", ".join(str(n) for n in networks if n.version == 6)
    rules = [
        'iif "lo" accept',
        "ct state established,related accept",
        *([f"ip saddr {{ {v4} }} accept"] if v4 else []),
        *([f"ip6 saddr {{ {v6} }} accept"] if v6 else []),
        f"tcp dport {ssh_port} accept",
        "meta l4proto { icmp, ipv6-icmp } accept",
    ]
    body = "\n".join(f"        {rule}" for rule in rules)
    # Declared, deleted, declared again: `nft -f` replaces a lock loaded before, never doubles it.
    chain = f"    chain input {{\n        type filter hook input priority filter - 10; policy drop;\n{body}\n    }}\n"
    return f"table inet {TABLE}\ndelete table inet {TABLE}\ntable inet {TABLE} {{\n{chain}}}\n"


def lock_argv() -> list[str]:
    """Loads the ruleset given on standard input (`ruleset(...)`)."""
    return ["nft", "-f", "-"]


def unlock_argv() -> list[str]:
    return ["nft", "delete", "table", "inet", TABLE]
