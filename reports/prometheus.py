"""The node_exporter textfile (`[reports] prometheus_textfile`): each check instance's state, the last run of
each cadence on each box, and the newest value of every figure, for a Prometheus the operator already runs.

Written whole and atomically (node_exporter must never read half a file). Names follow Prometheus'
conventions: `trading_maintenance_` prefix, snake_case, base units (`_seconds`, `_bytes`), `_total` only for
counters (a figure named `..._total` is a gauge here, so the suffix is dropped); HELP and TYPE for each.
"""

from __future__ import annotations

import datetime
import re
from pathlib import Path

from core import rootfiles
from core.atomic import write_atomically
from core.vocabulary import Verdict

PREFIX = "trading_maintenance"
DEFAULT_NAME = "trading-maintenance.prom"
# A figure's unit suffix -> (the base unit's suffix, the factor to it).
UNITS = {"_ms": ("_seconds", 0.001), "_seconds": ("_seconds", 1.0), "_kb": ("_bytes", 1024.0),
         "_mb": ("_bytes", 1024.0**2), "_gb": ("_bytes", 1024.0**3), "_bytes": ("_bytes", 1.0)}


def textfile_path(reports_dir: Path, configured: Path | None) -> Path:
    return configured if configured is not None else reports_dir / DEFAULT_NAME


def label_value(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def labels(**pairs: str) -> str:
    return "{" + ",".join(f'{name}="{label_value(value)}"' for name, value in pairs.items()) + "}"


def figure_metric(figure: str) -> tuple[str, float]:
    """(metric name, factor to its base unit) of a figure: `api_response_ms` -> seconds."""
    name = re.sub(r"[^a-z0-9_]+", "_", figure.lower()).strip("_")
    if name.endswith("_total"):
        name = name[: -len("_total")]
    factor = 1.0
    for suffix, (base, to_base) in UNITS.items():
        if name.endswith(suffix):
            name, factor = name[: -len(suffix)] + base, to_base
            break
    if name.endswith("_size"):  # database_size, table_size: sizes are read in bytes (reports/trail.py)
        name += "_bytes"
    return f"{PREFIX}_figure_{name}", factor


def timestamp_of(iso: str) -> float | None:
    try:
        when = datetime.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return when.timestamp()


def number(value: float) -> str:
    return repr(float(value)) if value == value else "NaN"


def render(instances: dict[str, dict], latest: dict[str, dict], series: dict[str, dict]) -> str:
    out: list[str] = []

    def family(name: str, kind: str, help_text: str, samples: list[tuple[str, float]]) -> None:
        if not samples:
            return
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} {kind}")
        out.extend(f"{name}{sample_labels} {number(value)}" for sample_labels, value in samples)

    checks = []
    for record in sorted(instances.values(), key=lambda one: (one["box"], one["instance"])):
        verdict = (record.get("latest") or {}).get("verdict", "")
        checks.append((labels(check=record["check"], instance=record["instance"], box=record["box"],
                              cadence=record["cadence"], severity=record.get("severity", ""), verdict=verdict),
                       1.0 if verdict in (Verdict.FAILED, Verdict.UNKNOWN) else 0.0))
    family(f"{PREFIX}_check_failing", "gauge",
           "1 when the check instance's latest verdict is failed (still wrong) or unknown (could not check), "
           "else 0; the verdict label says which", checks)
    checks_at = [(labels(check=r["check"], instance=r["instance"], box=r["box"], cadence=r["cadence"]), at)
                 for r in sorted(instances.values(), key=lambda one: (one["box"], one["instance"]))
                 if (at := timestamp_of((r.get("latest") or {}).get("at", ""))) is not None]
    family(f"{PREFIX}_check_last_run_timestamp_seconds", "gauge",
           "when the run that gave the check instance its latest verdict started (Unix time)", checks_at)

    runs = sorted(latest.items())
    family(f"{PREFIX}_last_run_timestamp_seconds", "gauge", "when the last run of the cadence on the box ended",
           [(run_labels(key), at) for key, run in runs if (at := timestamp_of(run["ended"] or run["started"]))])
    family(f"{PREFIX}_last_run_duration_seconds", "gauge", "how long the last run of the cadence on the box took",
           [(run_labels(key), run["duration_s"]) for key, run in runs])
    family(f"{PREFIX}_last_run_exit_status", "gauge",
           "the last run's exit status (0 all passed, 10 all fixed, 11 failures remain, 12 could not check, "
           "13 locked out, 14 alerts spooled)",
           [(run_labels(key), float(run["exit_status"])) for key, run in runs if run["exit_status"] is not None])

    figures: dict[str, list[tuple[str, float]]] = {}
    origin: dict[str, str] = {}
    for one in sorted(series.values(), key=lambda s: (s["figure"], s["box"], s["instance"])):
        if not one["points"]:
            continue
        name, factor = figure_metric(one["figure"])
        origin.setdefault(name, one["figure"])
        figures.setdefault(name, []).append(
            (labels(check=one["check"], instance=one["instance"], box=one["box"]), one["points"][-1][1] * factor))
    for name, samples in sorted(figures.items()):
        family(name, "gauge", f"the figure {origin[name]} as the check last recorded it", samples)
    return "\n".join(out) + "\n"


def run_labels(key: str) -> str:
    cadence, _, box = key.partition(" ")
    return labels(cadence=cadence, box=box)


def write_textfile(path: Path, instances: dict, latest: dict, series: dict, mode: int = rootfiles.PRIVATE,
                   group: str | None = None) -> Path:
    """Replaced whole (node_exporter never reads half), with the mode and group node_exporter needs."""
    write_atomically(path, render(instances, latest, series), mode, group)
    return path
