"""Render a backtest's result as one self-contained HTML page (a Jinja2 template, autoescaped, PNG charts inline)."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alerts.comovement import CoMovement
from alerts.study import Study, follower_paths
from bot.backtest.run import BacktestResult
from bot.backtest.words import corr, pct, study_label, what_happened


@dataclass(frozen=True)
class Cell:
    """One table cell: its text, a CSS class and a hover title."""

    text: str
    css: str = ""
    title: str = ""


def signed(value: float | None) -> Cell:
    """Return a percentage cell coloured by its sign (the sign is also in the text)."""
    css = "" if value is None else "pos" if value > 0 else "neg" if value < 0 else ""
    return Cell(pct(value), css)


def image(png: bytes | None) -> str | None:
    """Return a PNG as a data URI, or None when there is no chart."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii") if png else None


def by_label(studies: Sequence[Study]) -> dict[str, list[Study]]:
    """Group studies by signal kind (rule on leader), in their order."""
    groups: dict[str, list[Study]] = {}
    for study in studies:
        groups.setdefault(study_label(study), []).append(study)
    return groups


def leader_charts(result: BacktestResult) -> dict[str, dict[str, bytes | None]]:
    """Draw, per leader study, the leader's signals, the followers' paths, and the co-movement."""
    from alerts.charts import baseline_median, comovement_chart, signals_chart, study_chart

    charts: dict[str, dict[str, bytes | None]] = {}
    longest = max(result.horizons) if result.horizons else 180
    for label, studies in by_label(result.studies).items():
        leader = studies[0].leader
        closes = result.closes[leader]
        signal_days = [s.day for s in studies[0].signals]
        paths, baselines = {}, {}
        for study in studies:
            traded = [sig.day for sig in study.signals
                      if (o := study.outcome(sig.day, result.horizons[0])) is not None and o.status != "no_data"]
            paths[study.follower] = follower_paths(traded, result.closes[study.follower], longest)
            if study.baseline_years:
                first, last = study.baseline_years
                leader_days = [d.date() for d in closes.index if first <= d.year <= last]
                grid, every_day = follower_paths(leader_days, result.closes[study.follower], longest)
                baselines[study.follower] = baseline_median(grid, every_day)
        charts[label] = {
            "signals": signals_chart(leader, [d.date() for d in closes.index], closes.to_list(), signal_days,
                                     f"{leader}: signal episodes of {studies[0].rule_id}"),
            "paths": study_chart(f"After each {label} signal: followers indexed to 100", paths, result.horizons,
                                 baselines),
        }
    for leader, moves in _by_leader(result.comovements).items():
        charts[f"co-movement {leader}"] = {"comovement": comovement_chart(leader, moves)}
    return charts


def _by_leader(moves: Sequence[CoMovement]) -> dict[str, list[CoMovement]]:
    groups: dict[str, list[CoMovement]] = {}
    for move in moves:
        groups.setdefault(move.leader, []).append(move)
    return groups


def _study_rows(studies: list[Study]) -> dict[str, Any]:
    """Return the per-follower table of one signal kind, and the signals not yet known."""
    rows = []
    for study in studies:
        if study.skipped == len(study.signals):
            rows.append({"follower": study.follower, "none": True})
            continue
        years = f" ({study.baseline_years[0]}–{study.baseline_years[1]})" if study.baseline_years else ""
        for index, row in enumerate(study.rows):
            s, b = row.signals, row.baseline
            seen = s.count + row.not_yet
            rows.append({
                "follower": f"{study.follower}{years}" if index == 0 else "", "first": index == 0, "none": False,
                "cells": [Cell(f"+{row.horizon}d"), Cell(str(s.count)), signed(s.median), signed(s.mean),
                          Cell(pct(s.share_positive, False)), signed(s.worst), signed(s.best),
                          Cell(f"{b.count:,}"), signed(b.median), signed(b.mean), Cell(pct(b.share_positive, False)),
                          Cell(f"{row.ath_within} of {seen}"),
                          Cell("–" if row.flip_within is None else f"{row.flip_within} of {seen}"),
                          Cell(f"{row.not_yet}*" if row.not_yet else "")],
            })
    pending = sorted({(o.signal_day, o.horizon, o.needs_data_to) for st in studies for o in st.outcomes
                      if o.status == "not_yet"})
    return {"rows": rows, "pending": [f"signal {day} +{h}d needs data to {to}" for day, h, to in pending]}


def _signal_rows(studies: list[Study], horizons: Sequence[int]) -> dict[str, Any]:
    """Return each signal's returns per follower and horizon, with days to the follower's own high and flip."""
    head = [f"{s.follower} +{h}d" for s in studies for h in horizons]
    head += [f"{s.follower} own high" for s in studies]
    head += [f"{s.follower} own flip" for s in studies if s.flips_watched]
    rows, before = [], 0
    for index, signal in enumerate(studies[0].signals):
        if all((o := s.outcome(signal.day, horizons[0])) is None or o.status == "no_data" for s in studies):
            before += 1
            continue
        cells = []
        for study in studies:
            for h in horizons:
                outcome = study.outcome(signal.day, h)
                if outcome is None or outcome.status == "no_data":
                    cells.append(Cell("–", "dim"))
                elif outcome.status == "not_yet":
                    cells.append(Cell("not yet", "dim", f"needs data to {outcome.needs_data_to}"))
                else:
                    cells.append(signed(outcome.return_pct))
        for study in studies:
            days = study.follower_ath_days[index] if index < len(study.follower_ath_days) else None
            cells.append(Cell(f"+{days}d" if days is not None else ""))
        for study in studies:
            if study.flips_watched:
                flip = study.follower_flip_days[index]
                cells.append(Cell(f"+{flip}d" if flip is not None else ""))
        price = f"{signal.price:,.2f}" if signal.price else ""
        rows.append({"day": signal.day, "alerts": signal.alerts, "price": price, "cells": cells})
    return {"head": head, "rows": rows, "before": before}


def _comovement_rows(moves: list[CoMovement]) -> dict[str, Any]:
    windows = moves[0].windows
    head = [c for m in moves for c in (f"{m.follower} days", f"{m.follower} year",
                                        *[f"{m.follower} {w}d avg" for w in windows])]
    rows = []
    for year in sorted({y.year for m in moves for y in m.years}):
        cells: list[str] = []
        for move in moves:
            row = next((y for y in move.years if y.year == year), None)
            cells += [""] * (2 + len(windows)) if row is None else \
                [str(row.days), corr(row.correlation), *[corr(v) for v in row.mean_rolling]]
        rows.append({"year": year, "cells": cells})
    total = [c for m in moves for c in (str(m.days), corr(m.overall), *[""] * len(windows))]
    return {"head": head, "rows": rows, "total": total}


def _glance(groups: dict[str, list[Study]], horizons: Sequence[int]) -> dict[str, Any]:
    followers = list(dict.fromkeys(s.follower for studies in groups.values() for s in studies))
    rows = []
    for number, (label, studies) in enumerate(groups.items()):
        by_follower = {s.follower: s for s in studies}
        cells = []
        for follower in followers:
            study = by_follower.get(follower)
            for h in horizons:
                row = next((r for r in study.rows if r.horizon == h), None) if study else None
                if row is None or row.signals.median is None:
                    cells.append(Cell("–", "dim"))
                    continue
                better = row.baseline.median is not None and row.signals.median > row.baseline.median
                verdict = "better" if better else "worse" if row.baseline.median is not None else ""
                cells.append(Cell(pct(row.signals.median), verdict,
                                  f"{row.signals.count} signals; baseline median {pct(row.baseline.median)}"))
        counted = len(studies[0].signals) - studies[0].skipped
        rows.append({"anchor": f"study-{number}", "label": label, "n": counted, "cells": cells})
    return {"followers": followers, "rows": rows}


def page_context(result: BacktestResult) -> dict[str, Any]:
    """Return everything the report template shows, as plain values (the template only lays them out)."""
    charts = leader_charts(result)
    groups = by_label(result.studies)
    studies = []
    for number, (label, members) in enumerate(groups.items()):
        studies.append({
            "anchor": f"study-{number}", "label": label,
            "signals_chart": image(charts[label]["signals"]), "paths_chart": image(charts[label]["paths"]),
            "table": _study_rows(members), "each": _signal_rows(members, result.horizons),
        })
    moves = [{"leader": leader, "chart": image(charts[f"co-movement {leader}"]["comovement"]),
              "table": _comovement_rows(items)} for leader, items in _by_leader(result.comovements).items()]
    alerts = [{"day": f"{e.bar_time:%Y-%m-%d}", "rule": e.rule_id, "symbol": e.symbol,
               "what": what_happened(e)} for e in result.alerts]
    return {"r": result, "horizons": result.horizons, "glance": _glance(groups, result.horizons) if groups else None,
            "studies": studies, "moves": moves, "alerts": alerts}


def _environment() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
        autoescape=True, trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined,
    )


def render_html(result: BacktestResult) -> str:
    """Render the whole result as one self-contained HTML page with embedded PNG charts."""
    return _environment().get_template("report.html.j2").render(**page_context(result))


def write_html(result: BacktestResult, path: str | Path) -> Path:
    """Write the self-contained HTML report."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(result), encoding="utf-8")
    return path
