"""Words and numbers shared by the console, the files and the HTML report."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, is_dataclass
from datetime import date, datetime
from typing import Any

import numpy as np

from alerts.events import AlertEvent
from alerts.messages import format_alert
from alerts.study import Study


def pct(value: float | None, signed: bool = True) -> str:
    """Format a percentage for a table; a dash when unknown."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:+.1f}%" if signed else f"{value:.0f}%"


def corr(value: float | None) -> str:
    """Format a correlation; a dash when unknown."""
    return "–" if value is None else f"{value:+.2f}"


def what_happened(event: AlertEvent) -> tuple[str, str]:
    """Return an alert's headline (without emoji and symbol) and its second line of figures."""
    lines = format_alert(event).splitlines()
    head = lines[0].encode("ascii", "ignore").decode().strip() if lines else event.kind
    if head.startswith(event.symbol):
        head = head[len(event.symbol):].strip()
    detail = lines[1] if len(lines) > 2 else ""
    return head, detail


def jsonable(value: Any) -> Any:
    """Return a value as JSON-ready data (dates as ISO text, non-finite floats as null)."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (np.floating, np.integer)):
        return jsonable(value.item())
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if is_dataclass(value) and not isinstance(value, type):
        return jsonable(asdict(value))
    return value


def study_label(study: Study) -> str:
    """Name a study in words: which rule on which leader."""
    return f"{study.leader} {study.kind.replace('_', ' ')} ({study.rule_id})"
