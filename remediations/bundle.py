"""The diagnostics bundle: what a human needs to understand an emergency later, in one archive in the
box's backups area (the guide's collect-diagnostics.sh and forensic backup).

It holds the tail of every log, the agent's own readings, the service states, today's errors (they
are in the logs) and the suite's latest reports. Every secret the configuration knows is masked, so
is every usual shape of one (core/redact.py: `Authorization:` headers, bearer tokens, `password=...`,
`api_key: ...`, `signature=...`, private key blocks), and the agent's `.env` is never opened. The tails
are read on the box, the archive is put together here and written on the box, mode 600.
"""

from __future__ import annotations

import base64
import io
import json
import tarfile
import time
from pathlib import Path

from core import clock
from core.redact import Redactor
from probes.endpoints import http_get
from probes.remote import readers

NEVER = [".env"]  # the agent's secrets: never read, never archived
CHUNK = 96 * 1024  # bytes of archive per call to the box (a command-line argument over SSH)
REPORTS_PER_CADENCE = 1


def bundle_name(now: float) -> str:
    return time.strftime("emergency-diagnostics-%Y%m%d-%H%M%S.tar.gz", time.localtime(now))


def collect(ctx, reason: str) -> dict[str, str]:
    """Archive member name -> text, before masking."""
    settings, emergency = ctx.settings, ctx.settings.emergency
    members = {"README.txt": f"Diagnostics bundle of box {settings.host.name}: {reason}\n"
                             f"taken {time.strftime('%Y-%m-%d %H:%M:%S %z', time.localtime(clock.now()))}\n"}
    directories = [str(directory) for directory in emergency.bundle_log_dirs]
    for path, text in ctx.box.call(readers.log_tails, directories, emergency.bundle_log_lines, NEVER).items():
        members[f"logs{path}"] = text
    api = settings.api
    for name, path in (("health", "/api/health"), ("errors-dashboard", "/api/errors/dashboard"),
                       ("trading-status", emergency.endpoints.status)):
        reading = http_get(ctx.box, api.base_url.rstrip("/") + path, api.timeout_seconds, want_json=True)
        members[f"readings/{name}.json"] = json.dumps(
            {"url": reading.url, "status": reading.status, "problem": reading.problem, "body": reading.body}, indent=1)
    ctx.services.forget()
    members["services.txt"] = "".join(f"{name}: {ctx.services.state(name)}\n" for name in settings.services.critical())
    members.update(latest_reports(getattr(ctx, "reports_dir", None) or Path(settings.reports.dir)))
    return members


def latest_reports(directory: Path) -> dict[str, str]:
    """The newest HTML and JUnit report of each cadence the suite has written (where the suite runs)."""
    if not directory.is_dir():
        return {}
    found: dict[str, list[Path]] = {}
    for path in sorted(directory.glob("*-*.*")):
        if path.suffix in (".html", ".xml") and not path.name.startswith("."):
            found.setdefault(path.name.split("-", 1)[0] + path.suffix, []).append(path)
    return {f"reports/{path.name}": path.read_text(errors="replace")
            for paths in found.values() for path in paths[-REPORTS_PER_CADENCE:]}


def archive(members: dict[str, str], redactor: Redactor) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in members.items():
            data = redactor.text(text).encode()  # the configured secrets, then every usual shape of one
            info = tarfile.TarInfo(f"diagnostics/{name.lstrip('/')}")
            info.size, info.mtime, info.mode = len(data), int(clock.now()), 0o600
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def write_bundle(ctx, reason: str) -> str:
    """The bundle, written on the box; its path there."""
    data = archive(collect(ctx, reason), Redactor(ctx.settings.secrets()))
    target = Path(ctx.settings.emergency.bundle_dir) / bundle_name(clock.now())
    partial = target.with_name(f".{target.name}.partial")
    for offset in range(0, max(len(data), 1), CHUNK):
        ctx.box.call(readers.write_chunk, str(partial), base64.b64encode(data[offset:offset + CHUNK]).decode(),
                     offset == 0)
    ctx.box.call(readers.rename, str(partial), str(target))
    return str(target)
