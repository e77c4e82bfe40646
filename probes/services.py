"""Service states, from the service manager the configuration names, chosen once per run.

One class per manager, as testinfra has one Service class per init system. The probe is shared:
the checks read it and the remediations restart through it, so both agree on what "running" means.
"""

from __future__ import annotations

from configuration import Settings
from probes.host import host_of


class ServiceManagerUnavailable(Exception):
    """The service manager did not answer: the service checks could not look (UNKNOWN)."""


class ServiceManager:
    """All configured services are read in one call and kept until `forget()`: the daily run asks
    about each of them, and every call costs a process. A remediation forgets before it looks again."""

    RUNNING = ""

    def __init__(self, host, settings: Settings):
        self.host = host
        self.settings = settings
        self.names = settings.services.critical()
        self._states: dict[str, str] | None = None

    def state(self, name: str) -> str:
        if self._states is None or name not in self._states:
            self._states = self._read(self.names if name in self.names else [*self.names, name])
        return self._states[name]

    def is_running(self, name: str) -> bool:
        return self.state(name) == self.RUNNING

    def forget(self) -> None:
        self._states = None

    def restart_argv(self, name: str) -> list[str]:
        return self.restart_argv_for(self.settings, name)

    def argv(self, verb: str, name: str) -> list[str]:
        """`restart`, `stop` or `start` one service, as its manager is told to."""
        return self.command_for(self.settings, verb, name)

    @classmethod
    def restart_argv_for(cls, settings: Settings, name: str) -> list[str]:
        return cls.command_for(settings, "restart", name)

    @classmethod
    def command_for(cls, settings: Settings, verb: str, name: str) -> list[str]:
        raise NotImplementedError

    def restart_refusal(self, name: str) -> str | None:
        """Why restarting would be wrong even though the service is down, or None."""
        return None

    def tree_root(self) -> int | None:
        """The process every service of this manager descends from, or None when that is the whole box: what
        is looked for among the box's processes (the error handlers) is looked for there, so that two labs or
        agents sharing one kernel never see each other's."""
        return None

    def _read(self, names: list[str]) -> dict[str, str]:
        raise NotImplementedError


class SystemdServices(ServiceManager):
    RUNNING = "active"
    UNIT_FAILED, START_LIMIT_HIT = "failed", "start-limit-hit"  # systemd's words, not the suite's verdicts

    def _read(self, names: list[str]) -> dict[str, str]:
        """One state per unit, exit 0 (all active) or 3 (some not): anything else is no answer, and
        a service that could not be asked about is not a stopped service."""
        result = self.host.run("systemctl is-active" + " %s" * len(names), *names)
        states = result.stdout.split()
        if result.rc not in (0, 3) or len(states) != len(names):
            said = (result.stderr or result.stdout).strip().splitlines()
            raise ServiceManagerUnavailable(f"systemctl could not be asked (exit {result.rc}): "
                                            f"{said[0] if said else 'no answer'}")
        return dict(zip(names, states, strict=True))

    @classmethod
    def command_for(cls, settings: Settings, verb: str, name: str) -> list[str]:
        return ["systemctl", verb, name]

    def restart_refusal(self, name: str) -> str | None:
        """systemd gave up on a unit that keeps dying: a restart would hide why, a human must look.

        systemd says so as Result=start-limit-hit when a start was refused after a clean stop; when
        Restart= itself ran into the limit (systemd 252) the unit is failed with the last crash's
        result and as many automatic restarts as the burst allows. Both are read without root."""
        shown = self.host.run("systemctl show --property=ActiveState,Result,NRestarts,StartLimitBurst %s", name)
        unit = dict(line.split("=", 1) for line in shown.stdout.splitlines() if "=" in line)
        restarts, burst = int(unit.get("NRestarts") or 0), int(unit.get("StartLimitBurst") or 0)
        gave_up = unit.get("Result") == self.START_LIMIT_HIT or (
            unit.get("ActiveState") == self.UNIT_FAILED and burst > 0 and restarts >= burst)
        if gave_up:
            return (f"{name} is stuck at its systemd start limit ({restarts} automatic restarts, burst {burst}): "
                    f"find why it keeps dying (journalctl -u {name}), then systemctl reset-failed {name}")
        return None


class SupervisorServices(ServiceManager):
    RUNNING = "RUNNING"


    def _read(self, names: list[str]) -> dict[str, str]:
        # `supervisorctl status` exits 3 when a program is not running: that is an answer, not an error.
        supervisorctl = self.settings.host.supervisorctl
        result = self.host.run(" ".join(["%s"] * len(supervisorctl)) + " status", *supervisorctl)
        if result.rc not in (0, 3):
            raise ServiceManagerUnavailable(
                f"supervisorctl status failed (exit {result.rc}): {result.stderr or result.stdout}")
        known = dict(line.split()[:2] for line in result.stdout.splitlines() if len(line.split()) >= 2)
        return {name: known.get(name, "not managed by supervisor") for name in names}

    @classmethod
    def command_for(cls, settings: Settings, verb: str, name: str) -> list[str]:
        return [*settings.host.supervisorctl, verb, name]

    def tree_root(self) -> int | None:
        """supervisord's own pid (`supervisorctl pid`): its programs are its children."""
        supervisorctl = self.settings.host.supervisorctl
        result = self.host.run(" ".join(["%s"] * len(supervisorctl)) + " pid", *supervisorctl)
        said = result.stdout.strip()
        if result.rc != 0 or not said.isdigit():
            raise ServiceManagerUnavailable(f"supervisorctl pid failed (exit {result.rc}): "
                                            f"{(result.stderr or said).strip() or 'no answer'}")
        return int(said)


MANAGERS: dict[str, type[ServiceManager]] = {"systemd": SystemdServices, "supervisor": SupervisorServices}


def service_manager(settings: Settings) -> ServiceManager:
    """Chosen once, by the configuration's [host] service_manager."""
    return MANAGERS[settings.host.service_manager](host_of(settings), settings)


def parameters(settings: Settings) -> dict[str, list]:
    return {"service": settings.services.critical()}
