"""The [host] and [services] sections: the box, how the suite reaches it, and the services the guide names.

Everything a check reads of the box goes through [host] (probes/host.py's `Box`): on the box itself
(`local://`) or over SSH from a monitoring host, with the box's host keys pinned in `known_hosts`.
[services] gives the guide's critical services by role, and the user the agent runs as.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from configuration.section import COMMENTED, AccountName, Section, UnitName


class Host(Section):
    """The box: its name, how the suite reaches it (on the box itself, or over SSH from another machine) and
    which service manager runs its services. Over SSH every probe and remediation runs on the box, its logs
    scanned there by its own python3: only the figures travel."""

    per_box = True

    name: str = Field(default="trading-box", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
                      description="The box's name in reports, alerts and the audit trail.")
    backend: str = Field(default="local://", pattern=r"^(local|ssh)://",
                         description="How the box is reached: \"local://\" on the box itself, "
                                     "\"ssh://user@host:port\" from another machine (its maintenance user).")
    service_manager: Literal["systemd", "supervisor"] = Field(
        default="systemd", description="\"systemd\" on the real box; \"supervisor\" on a host without systemd "
                                       "(and in the lab).")
    supervisorctl: list[str] = Field(
        default=["supervisorctl"], examples=[["supervisorctl", "-c", "/etc/supervisor/supervisord.conf"]],
        description="How supervisorctl is run, as an argument list; read only with service_manager = "
                    "\"supervisor\".")
    ssh_identity_file: Path | None = Field(
        default=None, examples=["/etc/trading-maintenance/id_ed25519"], json_schema_extra=COMMENTED,
        description="Over SSH: the maintenance user's private key (not set: ssh's own choice).")
    ssh_config: Path | None = Field(
        default=None, examples=["/etc/trading-maintenance/ssh_config"], json_schema_extra=COMMENTED,
        description="Over SSH: an ssh_config file for the connection (ssh -F).")
    ssh_extra_args: list[str] = Field(
        default_factory=list, examples=[["-o", "ServerAliveInterval=15"]], json_schema_extra=COMMENTED,
        description="Over SSH: more arguments for ssh. Host key checking is the suite's own and cannot be "
                    "loosened here.")
    connect_timeout_seconds: float = Field(default=10, gt=0, le=120,
                                           description="Over SSH: how long a connection may take to open.")
    known_hosts: Path | None = Field(
        default=None, examples=["/var/lib/trading-maintenance/known_hosts"], json_schema_extra=COMMENTED,
        description="The box's host keys the suite trusts, and only these (ssh's StrictHostKeyChecking=yes, "
                    "always): written by `make trust-box BOX=name` once you have compared the fingerprints. "
                    "Not set: known_hosts in [policy] state_dir.")
    python: str = Field(default="python3", description="The box's interpreter for the suite's readers (standard "
                                                       "library only; Python 3.8 or newer).")
    sudo: bool = Field(default=False, description="true when the maintenance user is not root: the commands that "
                                                  "change the box (restarts, rotation, clean-up) run through "
                                                  "`sudo -n`, under the rules `make sudoers CONFIG=...` prints.")

    @field_validator("ssh_extra_args")
    @classmethod
    def _host_keys_are_the_suites(cls, words: list[str]) -> list[str]:
        """A box answering with a key nobody compared is not the box: the suite sets how host keys are checked
        (probes/host.py), so no argument may loosen it or point elsewhere."""
        host_key_options = ("stricthostkeychecking", "userknownhostsfile", "globalknownhostsfile", "knownhostscommand")
        for word in words:
            option = re.match(r"(?:-o)?\s*([A-Za-z]*)", word)[1].lower()
            if option in host_key_options:
                raise ValueError(f"{word!r} is the suite's to set: it checks the box's host key against [host] "
                                 f"known_hosts, always (StrictHostKeyChecking=yes); remove it, and trust the box's "
                                 f"keys once with make trust-box BOX=name")
        return words

    def known_hosts_file(self, state_dir: Path) -> Path:
        """Where the box's trusted host keys are: [host] known_hosts, else known_hosts in [policy] state_dir."""
        return self.known_hosts or Path(state_dir).absolute() / "known_hosts"


class Services(Section):
    """The guide's critical services, by role, each checked by the daily service checks; and the user the agent
    runs as. Names reach systemctl, sudoers rules and unit files, so each is one plain word."""

    per_box = True

    user: AccountName = Field(default="trading",
                              description="The user the agent runs as: a [[retention]] rule deletes only its files "
                                          "(unless the rule names its `owners`).")
    agent: UnitName = Field(default="trading-agent", description="The trading agent's unit (or supervisor program).")
    dashboard: UnitName = Field(default="trading-dashboard", description="The dashboard's unit.")
    tunnel: UnitName = Field(default="ssh-tunnel", description="The unit of the SSH tunnel to the cloud VM.")
    database: UnitName = Field(default="postgresql", description="The database server's unit.")

    def critical(self) -> list[str]:
        return [self.tunnel, self.agent, self.dashboard, self.database]
