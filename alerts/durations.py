"""Durations in the trader's words ('30m', '6h', '2d', '1w'), parsed once into a timedelta."""

from __future__ import annotations

import re
from datetime import timedelta

DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
DURATION_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float | None:
    """Turn '30m', '6h', '2d' into seconds; None when the text is not a duration."""
    match = DURATION.match(str(text).lower())
    if not match:
        return None
    return float(match.group(1)) * DURATION_SECONDS[match.group(2)]


def format_duration(span: timedelta) -> str:
    """Write a duration the way config.yaml does: '6h', '2d', '90s' (the largest unit that divides it)."""
    seconds = span.total_seconds()
    for unit in ("w", "d", "h", "m"):
        if seconds and seconds % DURATION_SECONDS[unit] == 0:
            return f"{seconds / DURATION_SECONDS[unit]:g}{unit}"
    return f"{seconds:g}s"


def to_timedelta(text: str) -> timedelta | None:
    """Turn '30m', '6h', '2d' into a timedelta; None when the text is not a duration."""
    seconds = parse_duration(text)
    return None if seconds is None else timedelta(seconds=seconds)
