"""Words and numbers shared by the console, the files and the HTML report."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, is_dataclass
from datetime import date, datetime
from typing import Any

import numpy as np

from alerts.events import AlertEvent
from alerts.messages import format_alert
from alerts.significance import MIN_SIGNALS, Significance
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


def verdict_words(test: Significance | None) -> str:
    """Say the verdict of a rotation test in words, never as a colour alone."""
    if test is None:
        return "no baseline"
    if test.verdict == "too few signals":
        return f"too few signals (n {test.n}, need {MIN_SIGNALS})" if test.n < MIN_SIGNALS else \
            f"too few start days ({test.start_days})"
    return test.verdict


def effect_words(test: Significance | None) -> str:
    """Return the effect, its 95% interval and the p-value as one short line ('' when untested)."""
    if test is None or test.effect is None:
        return ""
    text = f"{test.effect:+.1f} pts"
    if test.p_value is not None and test.low is not None and test.high is not None:
        text += f" [{test.low:+.1f}, {test.high:+.1f}] p {test.p_value:.2f}"
    return text


def p_words(value: float | None) -> str:
    """Format a p- or q-value; a dash when untested."""
    return "–" if value is None else f"{value:.3f}" if value < 0.01 else f"{value:.2f}"


def by_label(studies: Sequence[Study]) -> dict[str, list[Study]]:
    """Group studies by signal kind (rule on leader), in their order."""
    groups: dict[str, list[Study]] = {}
    for study in studies:
        groups.setdefault(study_label(study), []).append(study)
    return groups
