"""The agent's trading state: what the emergency POSTs change and GET /api/trading/status reports.

It lives in $LAB_DIR/run/agent-state.json, so it survives a restart of the agent as a real agent's
database would; `up` and `clear()` (fault clear --all) write the initial state again. The agent also
draws a token at each start (run/trading-agent.instance): a fault bound to one run of the agent
(error-handler-down) names it, and a restart mends that fault.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from pathlib import Path

INITIAL = {"tradingPaused": False, "emergencyMode": False, "verbosity": "normal", "openPositions": 3,
           "shutdown": False}
_LOCK = threading.Lock()  # the agent's handler threads change it one at a time


def read(path: Path) -> dict:
    try:
        stored = json.loads(Path(path).read_text())
    except (FileNotFoundError, ValueError):
        stored = {}
    return {**INITIAL, **{key: value for key, value in stored.items() if key in INITIAL}}


def write(path: Path, state: dict) -> None:
    """Atomic replace: a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    os.replace(tmp, path)


def reset(path: Path) -> None:
    write(path, INITIAL)


def update(path: Path, **changes) -> dict:
    """Apply the changes; returns the state as it was before them."""
    with _LOCK:
        before = read(path)
        write(path, {**before, **changes})
    return before


def new_instance(path: Path) -> str:
    token = uuid.uuid4().hex
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(token + "\n")
    return token


def current_instance(path: Path) -> str | None:
    try:
        return Path(path).read_text().strip() or None
    except FileNotFoundError:
        return None
