"""Package updates as the box's own apt sees them, the reboot flag, the application's npm audit and
the installed Node.js (Weekly 3, Quarterly 1, System Updates 1-2).

What is pending is what `apt-get -s dist-upgrade` would install (its `Inst` lines: the package, the
installed version, the candidate and the release files it comes from as `Label:Version/Archive`); the
release files' whole origin (o=, a=, n=, l=, c=) is `apt-cache policy`'s. A candidate is a security
update when one of its release files matches one of `[updates] security_origins`, unattended-upgrades'
Origins-Pattern: never the guide's `apt list --upgradable | grep -i security`, which matches a package
whose name says security and misses a fix published in both the security archive and the point release.
Every apt command runs under `[updates] apt_config` (APT_CONFIG) and LC_ALL=C, so that its lines parse.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import re
from dataclasses import dataclass, field

from configuration import Settings
from configuration.updates import ORIGIN_KEYS
from probes.host import Box
from probes.remote import readers, updatescan

INST = re.compile(r"^Inst (?P<name>\S+)(?: \[(?P<installed>[^\]]*)\])? \((?P<candidate>\S+)(?: (?P<sources>.*?))?"
                  r"(?: \[(?P<arch>[^\]]+)\])?\)(?: \[[^\]]*\])?\s*$")
NOT_FOUND = 127  # coreutils' timeout and env: the command does not exist


@dataclass(frozen=True)
class Pending:
    """One package apt would upgrade (or newly install), and where its candidate comes from."""

    name: str
    installed: str | None  # None: newly installed (a new dependency)
    candidate: str
    sources: tuple[str, ...]  # as apt prints them: Label:Version/Archive
    origins: tuple[dict, ...] = field(default=(), compare=False)  # each source's release fields
    security: bool = False

    def __str__(self) -> str:
        return f"{self.name} {self.installed or '(new)'} -> {self.candidate} ({', '.join(self.sources) or 'local'})"


def parse_simulation(text: str) -> list[dict]:
    """The `Inst` lines of `apt-get -s upgrade|dist-upgrade`: name, installed, candidate, sources, arch."""
    found = []
    for line in text.splitlines():
        match = INST.match(line)
        if match:
            sources = [part.strip() for part in (match["sources"] or "").split(", ") if part.strip()]
            found.append({"name": match["name"], "installed": match["installed"], "candidate": match["candidate"],
                          "sources": sources, "arch": match["arch"]})
    return found


def parse_source(text: str) -> dict:
    """`Label:Version/Archive` (or `Label:Archive`, `Archive`) as release fields l, v, a."""
    label, _, rest = text.rpartition(":")
    version, _, archive = rest.rpartition("/")
    return {"l": label, "v": version, "a": archive}


def parse_package_files(text: str) -> list[dict]:
    """The release fields of each package file of `apt-cache policy` (no arguments): `release v=..,o=..,
    a=..,n=..,l=..,c=..,b=..` lines, with the `origin` (site) line after them; the dpkg status (a=now)
    left out."""
    files: list[dict] = []
    for line in text.splitlines():
        words = line.split(None, 1)
        if len(words) == 2 and words[0] == "release":
            fields = {}
            for term in words[1].split(","):
                key, _, value = term.partition("=")
                fields[key.strip()] = value.strip()
            if fields.get("a") != "now":
                files.append(fields)
        elif len(words) == 2 and words[0] == "origin" and files:
            files[-1].setdefault("site", words[1].strip())
    return files


def origin_matches(pattern: str, fields: dict) -> bool:
    """unattended-upgrades' Origins-Pattern: every `key=glob` term matches the release file's field."""
    for term in pattern.split(","):
        if not term.strip():
            continue
        key, _, glob = term.partition("=")
        if not fnmatch.fnmatchcase(fields.get(ORIGIN_KEYS[key.strip()], ""), glob.strip()):
            return False
    return True


def classify(simulated: list[dict], files: list[dict], patterns: list[str]) -> list[Pending]:
    """Each simulated package with its sources' release fields (the package file with the same label,
    version and archive; else what its line says) and whether one of them matches a security pattern."""
    pending = []
    for entry in simulated:
        origins = []
        for source in entry["sources"]:
            said = parse_source(source)
            same = [f for f in files if all(f.get(key, "") == said[key] for key in ("l", "v", "a"))]
            origins += same or [said]
        security = any(origin_matches(pattern, fields) for pattern in patterns for fields in origins)
        pending.append(Pending(entry["name"], entry["installed"], entry["candidate"], tuple(entry["sources"]),
                               tuple(origins), security))
    return pending


def parse_npm_audit(text: str) -> dict:
    """`npm audit --json` (npm 6 and 7+ both have metadata.vulnerabilities): the count per severity, and
    (npm 7+) the vulnerable packages by severity."""
    try:
        report = json.loads(text)
    except ValueError:
        raise ValueError(f"npm audit did not print JSON: {text.strip()[:200]!r}") from None
    if not isinstance(report, dict):
        raise ValueError("npm audit printed JSON that is not an object")
    if "error" in report:
        error = report["error"] if isinstance(report["error"], dict) else {"summary": str(report["error"])}
        raise RuntimeError(f"npm audit failed: {error.get('code', '')} {error.get('summary', '')}".strip())
    counts = (report.get("metadata") or {}).get("vulnerabilities")
    if not isinstance(counts, dict):
        raise ValueError("npm audit's JSON has no metadata.vulnerabilities (a format this suite does not read)")
    packages: dict[str, list[str]] = {}
    for name, entry in (report.get("vulnerabilities") or {}).items():
        if isinstance(entry, dict) and entry.get("severity"):
            packages.setdefault(entry["severity"], []).append(name)
    return {"counts": {key: int(value) for key, value in counts.items()},
            "packages": {severity: sorted(names) for severity, names in packages.items()}}


def node_major(version: str) -> int:
    """`node --version` (v20.11.1) as its major version."""
    match = re.match(r"^v?(\d+)\.", version.strip())
    if not match:
        raise ValueError(f"node --version printed {version.strip()[:60]!r}, not a version")
    return int(match[1])


def _last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"


class UpdatesProbe:
    """What apt, the reboot flag, npm and node say on the box, read once per run."""

    def __init__(self, box: Box, settings: Settings):
        self.box = box
        self.config = settings.updates

    # -- apt

    def apt_argv(self, argv: list[str]) -> list[str]:
        """An apt command with the suite's APT_CONFIG and the C locale (its lines parse)."""
        config = [f"APT_CONFIG={self.config.apt_config}"] if self.config.apt_config else []
        return ["env", "LC_ALL=C", *config, *argv]

    def _apt(self, argv: list[str], what: str, privileged: bool = False) -> str:
        if self.config.apt_config and not self.box.call(readers.is_file, str(self.config.apt_config)):
            raise FileNotFoundError(f"[updates] apt_config {self.config.apt_config} does not exist: apt would "
                                    f"silently read the box's own configuration instead; fix the path or remove it")
        done = self.box.run(self.apt_argv(argv), privileged=privileged, timeout=self.config.install_timeout_seconds
                            if privileged else None)
        if done.returncode == NOT_FOUND:
            raise FileNotFoundError(f"{argv[0]} is not installed on the box: the update checks need apt "
                                    f"(Debian, Ubuntu); set [updates] {what}")
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed (exit {done.returncode}): "
                               f"{_last_line(done.stderr or done.stdout)}")
        return done.stdout

    def forget(self) -> None:
        """After an install, the re-check reads apt's answer again (plugin/flow.py's recheck calls this)."""
        for reading in ("package_files", "pending", "reboot"):
            self.__dict__.pop(reading, None)

    @functools.cached_property
    def package_files(self) -> list[dict]:
        """The release fields of every package list apt has; none is an error: nothing could be compared."""
        if self.config.refresh_lists:
            self._apt([self.config.apt_get, "update", "-q"], "apt_get", privileged=True)
        files = parse_package_files(self._apt([self.config.apt_cache, "policy"], "apt_cache"))
        if not files:
            where = f" (APT_CONFIG {self.config.apt_config})" if self.config.apt_config else ""
            raise LookupError(f"apt has no package lists{where}: nothing to compare the installed packages with; "
                              f"run `apt-get update` (or set [updates] refresh_lists = true)")
        return files

    @functools.cached_property
    def pending(self) -> list[Pending]:
        """Everything `apt-get dist-upgrade` would install now, each marked security or not."""
        files = self.package_files
        text = self._apt([self.config.apt_get, "-s", "-o", "Debug::NoLocking=true", "dist-upgrade"], "apt_get")
        return classify(parse_simulation(text), files, list(self.config.security_origins))

    @property
    def security(self) -> list[Pending]:
        return [p for p in self.pending if p.security]

    def held(self, pending: Pending | str) -> bool:
        """A package the suite never installs ([updates] hold: the kernel)."""
        name = pending if isinstance(pending, str) else pending.name
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.config.hold)

    # -- the reboot flag

    @functools.cached_property
    def reboot(self) -> dict:
        """{"required", "packages", "since"} from [updates] reboot_required_file and its .pkgs."""
        try:
            return self.box.call(updatescan.reboot_required, str(self.config.reboot_required_file),
                                 str(self.config.reboot_packages_file()))
        except PermissionError:
            raise PermissionError(f"{self.config.reboot_required_file} (or its .pkgs) cannot be read: run the "
                                  f"weekly checks as a user who may read it") from None

    # -- npm and node

    @functools.cached_property
    def npm_not_applicable(self) -> str | None:
        """Why npm audit does not apply here (no package.json, no npm), or None."""
        package_json = self.config.app_dir / "package.json"
        if not self.box.call(readers.is_file, str(package_json)):
            return f"no {package_json}: no Node.js application to audit"
        if self.box.run(["env", self.config.npm, "--version"], timeout=30).returncode == NOT_FOUND:
            return f"{self.config.npm} is not installed on the box ([updates] npm)"
        return None

    @functools.cached_property
    def npm_audit(self) -> dict:
        """npm audit's counts per severity for [updates] app_dir."""
        done = self.box.run(["env", "-C", str(self.config.app_dir), self.config.npm, "audit", "--json"],
                            timeout=self.config.npm_timeout_seconds)
        if not done.stdout.strip():  # exit 1 with JSON is "vulnerabilities found"; no JSON is a failure
            raise RuntimeError(f"npm audit in {self.config.app_dir} failed (exit {done.returncode}): "
                               f"{_last_line(done.stderr)}")
        return parse_npm_audit(done.stdout)

    @functools.cached_property
    def node_version(self) -> str | None:
        """`node --version`, or None when there is no node on the box."""
        done = self.box.run([self.config.node, "--version"], timeout=30)
        if done.returncode == NOT_FOUND:
            return None
        if done.returncode != 0:
            raise RuntimeError(f"{self.config.node} --version failed (exit {done.returncode}): "
                               f"{_last_line(done.stderr or done.stdout)}")
        return done.stdout.strip()
