"""Trends of the figures checks record (any property of a check that holds a number), as inline SVG, with
the configuration's threshold drawn on the figures that have one.

Which figure a threshold belongs to is a small mapping (THRESHOLDS): a figure name, or a prefix ending in
`*`, to the settings that hold its limits. A figure with none is drawn without a line.
"""

from __future__ import annotations

from pathlib import Path

from configuration import Settings
from core.atomic import write_atomically
from core.vocabulary import Severity
from reports.files import shared_access
from reports.page import escape, page

# figure name (or prefix*) -> (label, dotted path into the box's settings), each drawn as a dashed line.
THRESHOLDS: dict[str, tuple[tuple[str, str], ...]] = {
    "cpu_percent": ((Severity.WARNING, "resources.cpu.warning"), (Severity.CRITICAL, "resources.cpu.critical")),
    "cpu_usage_percent": ((Severity.WARNING, "resources.cpu.warning"), (Severity.CRITICAL, "resources.cpu.critical")),
    "memory_percent": (("warning", "resources.memory.warning"), ("critical", "resources.memory.critical")),
    "memory_usage_percent": (("warning", "resources.memory.warning"), ("critical", "resources.memory.critical")),
    "disk_percent*": (("warning", "resources.disk.warning"), ("critical", "resources.disk.critical")),
    "disk_usage_percent*": (("warning", "resources.disk.warning"), ("critical", "resources.disk.critical")),
    "disk_temperature_celsius": (("limit", "hardware.max_disk_temperature_celsius"),),
    "cpu_temperature_max_celsius": (("limit", "hardware.max_cpu_temperature_celsius"),),
    "wear_percent_used": (("limit", "hardware.max_wear_percent"),),
    "dead_tuple_percent": (("limit", "database.thresholds.max_dead_tuple_percent"),),
    "xid_age": (("warning", "database.thresholds.xid_age_warning"),
                ("critical", "database.thresholds.xid_age_critical")),
}
WIDTH, HEIGHT, MARGIN = 420, 120, 28


def settings_value(settings: Settings, dotted: str) -> float | None:
    value: object = settings
    for part in dotted.split("."):
        value = getattr(value, part, None)
        if value is None:
            return None
    return float(value) if isinstance(value, int | float) else None


def box_settings(settings: Settings | None, box: str) -> Settings | None:
    if settings is None:
        return None
    return next((each for each in settings.boxes() if each.host.name == box), settings)


def thresholds_for(settings: Settings | None, box: str, figure: str) -> list[tuple[str, float]]:
    """The configured limits of `figure` on `box`: (label, value)."""
    settings = box_settings(settings, box)
    if settings is None:
        return []
    for pattern, limits in THRESHOLDS.items():
        if figure == pattern or (pattern.endswith("*") and figure.startswith(pattern[:-1])):
            found = [(label, settings_value(settings, path)) for label, path in limits]
            return [(label, value) for label, value in found if value is not None]
    return []


def svg(title: str, points: list[list], thresholds: list[tuple[str, float]]) -> str:
    """A line of the points (oldest left), the thresholds as dashed lines, the last value in the title."""
    values = [float(value) for _, value in points]
    low = min([*values, *(value for _, value in thresholds)], default=0.0)
    high = max([*values, *(value for _, value in thresholds)], default=1.0)
    if high == low:
        high, low = high + 1, low - 1 if low else 0
    span_x = max(len(values) - 1, 1)

    def x(i: int) -> float:
        return MARGIN + i * (WIDTH - 2 * MARGIN) / span_x

    def y(v: float) -> float:
        return HEIGHT - MARGIN + (MARGIN * 2 - HEIGHT) * (v - low) / (high - low) + 4

    line = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
    parts = [f'<svg width="{WIDTH}" height="{HEIGHT}" role="img" '
             f'aria-label="{escape(title)}">',
             f'<text x="4" y="14">{escape(title)}: last {format_value(values[-1]) if values else "-"}'
             f' ({len(values)} point{"s" if len(values) != 1 else ""}, '
             f'{escape(points[0][0][:10]) if points else ""} to {escape(points[-1][0][:10]) if points else ""})</text>',
             f'<text x="2" y="{y(high):.1f}">{format_value(high)}</text>',
             f'<text x="2" y="{y(low):.1f}">{format_value(low)}</text>']
    for label, value in thresholds:
        colour = "#b42318" if label == Severity.CRITICAL else "#b7791f"
        parts.append(f'<line class="threshold" x1="{MARGIN}" x2="{WIDTH - MARGIN}" y1="{y(value):.1f}" '
                     f'y2="{y(value):.1f}" stroke="{colour}" stroke-dasharray="4 3"/>')
        parts.append(f'<text x="{WIDTH - MARGIN + 2}" y="{y(value):.1f}">{escape(label)} {format_value(value)}</text>')
    if len(values) > 1:
        parts.append(f'<polyline fill="none" stroke="#1d4ed8" stroke-width="1.5" points="{line}"/>')
    for i, v in enumerate(values[-1:], start=len(values) - 1):
        parts.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="2.5" fill="#1d4ed8"/>')
    parts.append("</svg>")
    return "".join(parts)


def format_value(value: float) -> str:
    return f"{value:.6g}"


def chart(series: dict, settings: Settings | None) -> str:
    return svg(series["figure"], series["points"], thresholds_for(settings, series["box"], series["figure"]))


def write_trends(reports_dir: Path, all_series: dict[str, dict], settings: Settings | None) -> Path:
    """trends.html: every figure's recent values, grouped by box and check instance."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for series in all_series.values():
        groups.setdefault((series["box"], series["instance"]), []).append(series)
    sections = []
    for (box, instance), members in sorted(groups.items()):
        charts = "".join(chart(series, settings) for series in sorted(members, key=lambda s: s["figure"]))
        sections.append(f"<h2>{escape(instance)} on {escape(box)}</h2>\n<div>{charts}</div>")
    body = ('<h1>Trends of the figures</h1><p><a href="index.html">all runs</a> · the dashed lines are the '
            "configured thresholds</p>\n" + ("\n".join(sections) or "<p>No check has recorded a figure yet.</p>"))
    path = reports_dir / "trends.html"
    write_atomically(path, page("Trading box maintenance: trends", body), *shared_access(settings))
    return path
