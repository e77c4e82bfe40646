"""A list said in one line of a message: `a, b, c, ... (4 more)`, cut where it would drown the rest."""

from __future__ import annotations

from collections.abc import Iterable


def listed(values: Iterable, limit: int = 10) -> str:
    """Empty for no values: the caller says what none means (`listed(ports) or 'none'`)."""
    values = [str(value) for value in values]
    return ", ".join(values[:limit]) + (f", ... ({len(values) - limit} more)" if len(values) > limit else "")
