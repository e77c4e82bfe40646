"""The lab's apt, npm and reboot flag: real apt and dpkg, without the network and without touching the
machine's own package state.

Under $LAB_DIR/apt: two local repositories ("flat" ones, a Packages and a hand-written Release each),
one like Debian's security archive (Origin Debian, Label Debian-Security, Suite stable-security,
Codename bookworm-security) and one like bookworm-updates; empty .deb packages made with dpkg-deb
(control files only); a private dpkg admin directory whose status file lists the "installed" older
versions; private lists, cache, logs and sources; all selected by `apt.conf`, given to apt as
APT_CONFIG ([updates] apt_config). `apt-get update` reads the `file:` sources offline ([trusted=yes]),
and `apt-get install` installs into the private admin directory (dpkg --admindir, --instdir inside
the lab; --force-not-root when not root), never /var/lib/dpkg.

The npm registry is not reachable here: `apt/bin/npm` is a stand-in that prints a recorded `npm audit
--json` report (npm 7+ format) from `apt/npm-audit.json`. The application's package.json is written
into the lab's /opt/trading-agent when it has none.

Healthy: nothing pending (the installed versions are the repositories' newest), no reboot flag, a clean
audit. Faults: a newer security version of openssl, newer ordinary versions of tzdata and of the kernel
package, the reboot flag with its packages, a high vulnerability in the recorded audit.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from lab.paths import LabPaths

ARCH = "all"
# (package, installed version, repository); the healthy repositories hold exactly these versions.
INSTALLED = [("openssl", "3.0.11-1~deb12u2", "security"), ("tzdata", "2024a-0+deb12u1", "updates"),
             ("linux-image-amd64", "6.1.106-3", "updates")]
SECURITY_FIX = ("openssl", "3.0.15-1~deb12u1", "security")
ORDINARY = [("tzdata", "2025b-0+deb12u1", "updates"), ("linux-image-amd64", "6.1.112-1", "updates")]
REPOS = {  # name: Release fields
    "security": {"Origin": "Debian", "Label": "Debian-Security", "Suite": "stable-security", "Version": "12",
                 "Codename": "bookworm-security"},
    "updates": {"Origin": "Debian", "Label": "Debian", "Suite": "stable-updates", "Version": "12",
                "Codename": "bookworm-updates"},
}
REBOOT_PACKAGES = ["linux-image-6.1.0-26-amd64", "libc6"]
NPM_VERSION = "10.8.2"
VULNERABLE = {"axios": "high", "follow-redirects": "moderate"}
TIMEOUT = 60


class AptPaths:
    def __init__(self, paths: LabPaths):
        self.root = paths.root / "apt"
        self.repo = self.root / "repo"
        self.build = self.root / "build"
        self.admin = self.root / "dpkg"
        self.status = self.admin / "status"
        self.instdir = self.root / "root"
        self.lists = self.root / "lists"
        self.cache = self.root / "cache"
        self.etc = self.root / "etc"
        self.log = self.root / "log"
        self.config = self.root / "apt.conf"
        self.state = self.root / "lab-state.json"
        self.npm = self.root / "bin" / "npm"
        self.audit = self.root / "npm-audit.json"
        self.reboot_required = paths.run_dir / "reboot-required"
        self.reboot_packages = paths.run_dir / "reboot-required.pkgs"
        self.package_json = paths.opt_dir / "package.json"

    def dirs(self) -> list[Path]:
        return [self.repo / "security", self.repo / "updates", self.build, self.admin / "info",
                self.admin / "updates", self.admin / "triggers", self.instdir, self.lists / "partial",
                self.cache / "archives" / "partial", self.etc / "apt.conf.d", self.etc / "preferences.d",
                self.etc / "sources.list.d", self.etc / "trusted.gpg.d", self.log, self.npm.parent]


def apt_conf(apt: AptPaths) -> str:
    """Every directory apt and dpkg use, the lab's own; the machine's apt.conf.d is not read (Dir::Etc::Parts)."""
    root_only = [] if os.geteuid() == 0 else ['"--force-not-root";']
    options = [f'"--admindir={apt.admin}";', f'"--instdir={apt.instdir}";', f'"--log={apt.log / "dpkg.log"}";',
               *root_only]
    return "\n".join([
        f'Dir::State "{apt.root / "state"}";',
        f'Dir::State::lists "{apt.lists}";',
        f'Dir::State::status "{apt.status}";',
        f'Dir::Cache "{apt.cache}";',
        f'Dir::Etc "{apt.etc}";',
        f'Dir::Etc::main "{apt.etc / "apt.conf"}";',
        f'Dir::Etc::Parts "{apt.etc / "apt.conf.d"}";',
        f'Dir::Etc::sourcelist "{apt.etc / "sources.list"}";',
        f'Dir::Etc::sourceparts "{apt.etc / "sources.list.d"}";',
        f'Dir::Log "{apt.log}";',
        'APT::Sandbox::User "root";' if os.geteuid() == 0 else "",
        f"DPkg::Options {{{' '.join(options)}}};",
        "",
    ])


def _control(name: str, version: str, status: bool = False) -> str:
    lines = [f"Package: {name}", *(["Status: install ok installed"] if status else []), "Priority: optional",
             "Section: misc", "Maintainer: Trading Lab <lab@localhost>", f"Architecture: {ARCH}",
             f"Version: {version}", "Description: the lab's stand-in package (no files)"]
    return "\n".join(lines) + "\n"


def _deb(apt: AptPaths, name: str, version: str, repo: str) -> None:
    target = apt.repo / repo / f"{name}_{version}_{ARCH}.deb"
    if target.exists():
        return
    tree = apt.build / f"{name}_{version}"
    (tree / "DEBIAN").mkdir(parents=True, exist_ok=True)
    (tree / "DEBIAN" / "control").write_text(_control(name, version))
    subprocess.run(["dpkg-deb", "--build", "-Zgzip", "--root-owner-group", str(tree), str(target)], check=True,
                   capture_output=True, timeout=TIMEOUT)


def _repositories(apt: AptPaths, packages: list[tuple[str, str, str]]) -> None:
    for repo, fields in REPOS.items():
        directory = apt.repo / repo
        for old in directory.glob("*.deb"):
            if not any(old.name == f"{n}_{v}_{ARCH}.deb" for n, v, r in packages if r == repo):
                old.unlink()
        for name, version, where in packages:
            if where == repo:
                _deb(apt, name, version, repo)
        listing = subprocess.run(["dpkg-scanpackages", "-m", ".", "/dev/null"], cwd=directory, check=True,
                                 capture_output=True, text=True, timeout=TIMEOUT).stdout
        (directory / "Packages").write_text(listing)
        data = listing.encode()
        release = [f"{key}: {value}" for key, value in fields.items()]
        release += [f"Date: {email.utils.formatdate(usegmt=True)}", f"Architectures: {ARCH} amd64",
                    "Components: main", "Description: the trading lab's stand-in repository",
                    "SHA256:", f" {hashlib.sha256(data).hexdigest()} {len(data)} Packages"]
        (directory / "Release").write_text("\n".join(release) + "\n")


def _status_text() -> str:
    return "\n".join(_control(name, version, status=True) for name, version, _ in INSTALLED) + "\n"


def _npm_standin(apt: AptPaths) -> None:
    script = f'''#!{sys.executable}
"""A stand-in for npm (the lab has no network, the npm registry is out of reach): `npm --version`, and
`npm audit --json` printing the recorded report {apt.audit}, exit 1 when it counts any vulnerability."""
import json, sys
args = sys.argv[1:]
if args[:1] == ["--version"]:
    print("{NPM_VERSION}")
    sys.exit(0)
if args[:1] == ["audit"]:
    text = open({str(apt.audit)!r}).read()
    print(text)
    sys.exit(1 if json.loads(text)["metadata"]["vulnerabilities"]["total"] else 0)
print("npm (lab stand-in): only --version and audit --json", file=sys.stderr)
sys.exit(1)
'''
    apt.npm.write_text(script)
    apt.npm.chmod(0o755)


def audit_report(vulnerable: dict[str, str]) -> dict:
    """What npm 7+ prints for `npm audit --json`, with these packages at these severities."""
    counts = {level: 0 for level in ("info", "low", "moderate", "high", "critical")}
    for severity in vulnerable.values():
        counts[severity] += 1
    counts["total"] = len(vulnerable)
    return {"auditReportVersion": 2,
            "vulnerabilities": {name: {"name": name, "severity": severity, "isDirect": True, "via": [],
                                       "effects": [], "range": "<1.7.4", "nodes": [f"node_modules/{name}"],
                                       "fixAvailable": True} for name, severity in vulnerable.items()},
            "metadata": {"vulnerabilities": counts,
                         "dependencies": {"prod": 42, "dev": 7, "optional": 0, "peer": 0, "peerOptional": 0,
                                          "total": 49}}}


def _apt_get(apt: AptPaths, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "APT_CONFIG": str(apt.config), "LC_ALL": "C", "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(["apt-get", *args], env=env, capture_output=True, text=True, timeout=TIMEOUT, check=True)


def _write(apt: AptPaths, security: bool, ordinary: bool) -> None:
    """The repositories with or without the newer versions, the healthy status file, the package lists."""
    for directory in apt.dirs():
        directory.mkdir(parents=True, exist_ok=True)
    apt.config.write_text(apt_conf(apt))
    (apt.etc / "sources.list").write_text("".join(f"deb [trusted=yes] file:{apt.repo / repo} ./\n" for repo in REPOS))
    packages = [*INSTALLED, *([SECURITY_FIX] if security else []), *(ORDINARY if ordinary else [])]
    _repositories(apt, packages)
    (apt.admin / "available").touch()
    for name, _, _ in INSTALLED:
        (apt.admin / "info" / f"{name}.list").touch()
    apt.status.write_text(_status_text())
    _apt_get(apt, "update", "-q")
    apt.state.write_text(json.dumps({"security": security, "ordinary": ordinary}))


def _state(apt: AptPaths) -> dict:
    try:
        return json.loads(apt.state.read_text())
    except (FileNotFoundError, ValueError):
        return {}


def regenerate(paths: LabPaths, now: datetime | None = None) -> None:
    """The healthy packages, reboot flag and audit; cheap when they already are."""
    apt = AptPaths(paths)
    state = _state(apt)
    healthy = state == {"security": False, "ordinary": False}
    if not (healthy and apt.status.exists() and apt.status.read_text() == _status_text()):
        _write(apt, security=False, ordinary=False)
    apt.reboot_required.unlink(missing_ok=True)
    apt.reboot_packages.unlink(missing_ok=True)
    _npm_standin(apt)
    apt.audit.write_text(json.dumps(audit_report({}), indent=2))
    if not apt.package_json.exists():
        apt.package_json.parent.mkdir(parents=True, exist_ok=True)
        apt.package_json.write_text(json.dumps({"name": "trading-agent", "version": "1.4.2", "private": True,
                                                "dependencies": {"axios": "^1.6.0", "pg": "^8.11.0"}}, indent=2))


def security_updates_pending(paths: LabPaths, now: datetime | None = None) -> None:
    apt = AptPaths(paths)
    _write(apt, security=True, ordinary=bool(_state(apt).get("ordinary")))


def updates_pending(paths: LabPaths, now: datetime | None = None) -> None:
    apt = AptPaths(paths)
    _write(apt, security=bool(_state(apt).get("security")), ordinary=True)


def installed_version(paths: LabPaths, name: str) -> str | None:
    """The version the lab's private dpkg status says is installed."""
    try:
        stanzas = AptPaths(paths).status.read_text().split("\n\n")
    except FileNotFoundError:
        return None
    for stanza in stanzas:
        fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line)
        if fields.get("Package") == name:
            return fields.get("Version")
    return None


def security_fix_missing(paths: LabPaths) -> bool:
    """Mended once the security version is installed (into the private admin directory)."""
    return installed_version(paths, SECURITY_FIX[0]) != SECURITY_FIX[1]


def reboot_required(paths: LabPaths, now: datetime | None = None) -> None:
    apt = AptPaths(paths)
    apt.reboot_required.parent.mkdir(parents=True, exist_ok=True)
    apt.reboot_required.write_text("*** System restart required ***\n")
    apt.reboot_packages.write_text("".join(f"{name}\n" for name in REBOOT_PACKAGES))


def npm_vulnerable(paths: LabPaths, now: datetime | None = None) -> None:
    AptPaths(paths).audit.write_text(json.dumps(audit_report(VULNERABLE), indent=2))


def config_values(paths: LabPaths) -> dict:
    """[updates] for the lab's configuration."""
    apt = AptPaths(paths)
    return {"apt_config": apt.config, "reboot_required_file": apt.reboot_required, "app_dir": paths.opt_dir,
            "npm": str(apt.npm), "npm_audit_level": "moderate", "node_min_major": 18, "max_pending": 20,
            "install": False}
