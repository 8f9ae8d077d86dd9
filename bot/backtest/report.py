"""Render a backtest's result as one self-contained HTML page (a Jinja2 template, autoescaped, PNG charts inline)."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alerts.comovement import CoMovement, LeadLag
from alerts.significance import ALPHA, MIN_SIGNALS, Significance
from alerts.study import Study, follower_paths
from bot.backtest.run import BacktestResult
from bot.backtest.words import by_label, corr, p_words, pct, what_happened


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
                leader_days = [d for d in closes.dates() if first <= d.year <= last]
                grid, every_day = follower_paths(leader_days, result.closes[study.follower], longest)
                baselines[study.follower] = baseline_median(grid, every_day)
        charts[label] = {
            "signals": signals_chart(leader, closes.dates(), closes.values.tolist(), signal_days,
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
                          *_test_cells(row.test), Cell(f"{row.ath_within} of {seen}"),
                          Cell("–" if row.flip_within is None else f"{row.flip_within} of {seen}"),
                          Cell(f"{row.not_yet}*" if row.not_yet else "")],
            })
    pending = sorted({(o.signal_day, o.horizon, o.needs_data_to) for st in studies for o in st.outcomes
                      if o.status == "not_yet"})
    return {"rows": rows, "pending": [f"signal {day} +{h}d needs data to {to}" for day, h, to in pending]}


def _test_cells(test: Significance | None) -> list[Cell]:
    """Return effect, 95% interval, p and verdict cells of one horizon's rotation test."""
    if test is None or test.effect is None:
        return [Cell("–", "dim")] * 3 + [Cell("no baseline" if test is None else "too few signals", "l dim")]
    interval = "–" if test.low is None or test.high is None else f"{test.low:+.1f} to {test.high:+.1f}"
    words = test.verdict if test.p_value is not None else f"too few signals (need {MIN_SIGNALS})"
    css = {"better than chance": "better", "worse than chance": "worse"}.get(test.verdict, "")
    return [Cell(f"{test.effect:+.1f}"), Cell(interval), Cell(p_words(test.p_value)), Cell(words, f"l {css}".strip())]


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


def verdict_cell(test: Significance | None) -> Cell:
    """Return a verdict cell: the words always, the colour only beside them."""
    if test is None:
        return Cell("–", "dim")
    if test.p_value is None:
        return Cell("too few signals" if test.verdict == "too few signals" else "–", "dim",
                    f"n {test.n}: a verdict needs {MIN_SIGNALS} signals or more")
    css = {"better than chance": "better", "worse than chance": "worse"}.get(test.verdict, "")
    return Cell(f"{test.verdict} · {test.effect:+.1f} pts · p {p_words(test.p_value)}", css,
                f"n {test.n}; 95% interval of the effect {test.low:+.1f} to {test.high:+.1f} points")


def _glance(groups: dict[str, list[Study]], horizons: Sequence[int]) -> list[dict[str, Any]]:
    """Return one row per signal kind and follower: n, then each horizon's verdict."""
    rows = []
    for number, (label, studies) in enumerate(groups.items()):
        shown = [s for s in studies if s.skipped < len(s.signals)]
        for index, study in enumerate(shown):
            cells = [Cell(str(len(study.signals) - study.skipped))]
            for h in horizons:
                row = next((r for r in study.rows if r.horizon == h), None)
                cells.append(verdict_cell(row.test if row else None))
            rows.append({"anchor": f"study-{number}", "label": label if index == 0 else "", "first": index == 0,
                         "follower": study.follower, "cells": cells})
    return rows


def _claims(result: BacktestResult) -> list[dict[str, Any]]:
    css = {"holds": "better", "does not hold": "worse", "partly": "partly", "cannot be checked": "dim"}
    return [{"title": c.title, "quote": c.quote, "verdict": c.verdict, "css": css.get(c.verdict, ""),
             "summary": c.summary, "numbers": c.numbers} for c in result.claims]


def _sweep(result: BacktestResult, top: int = 40) -> dict[str, Any] | None:
    sweep = result.sweep
    if sweep is None:
        return None
    tested = [r for r in sweep.rows if r.p_value is not None]
    rows = [{"params": r.label, "signal": r.signal, "follower": r.follower, "horizon": r.horizon, "n": r.n,
             "effect": "–" if r.effect is None else f"{r.effect:+.1f}", "p": p_words(r.p_value),
             "q": p_words(r.q_value), "verdict": r.verdict,
             "css": "better" if r.q_value is not None and r.q_value < ALPHA and (r.effect or 0) > 0 else
             "worse" if r.q_value is not None and r.q_value < ALPHA else ""} for r in tested[:top]]
    grid = "; ".join(f"{key} = {', '.join(values)}" for key, values in sweep.grid)
    return {"grid": grid, "combinations": sweep.combinations, "tests": sweep.tests, "rows": rows,
            "more": max(len(tested) - top, 0), "untested": len(sweep.rows) - len(tested),
            "warning": sweep.warning(), "correction": sweep.correction, "seconds": f"{sweep.seconds:.1f}",
            "workers": sweep.workers}


def _coverage(result: BacktestResult) -> list[dict[str, Any]]:
    return [{"rule": c.rule_id, "kind": c.kind, "never": not c.evaluated, "evaluated": ", ".join(c.evaluated),
             "skipped": "; ".join(f"{s}: {w}" for s, w in c.skipped), "alerts": c.alerts}
            for c in result.coverage]


def _lead_lag(result: BacktestResult) -> list[dict[str, Any]]:
    from alerts.study_charts import lead_lag_chart

    by_leader: dict[str, list[LeadLag]] = {}
    for item in result.lead_lags:
        by_leader.setdefault(item.leader, []).append(item)
    out = []
    for leader, items in by_leader.items():
        readings = []
        for item in items:
            same = item.peak("same")
            split = ", ".join(f"{name} {dict(zip(item.lags, values)).get(0):+.2f}" for name, values in item.since
                              if dict(zip(item.lags, values)).get(0) is not None)
            readings.append({"follower": item.follower, "period": "daily" if item.period == "day" else "weekly",
                             "reading": item.reading(), "same": corr(same[1]) if same else "–", "split": split,
                             "pairs": item.pairs})
        out.append({"leader": leader, "chart": image(lead_lag_chart(leader, items)), "readings": readings})
    return out


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
            "studies": studies, "moves": moves, "alerts": alerts, "claims": _claims(result), "sweep": _sweep(result),
            "coverage": _coverage(result), "lead_lags": _lead_lag(result), "min_signals": MIN_SIGNALS,
            "alpha": ALPHA, "followers_n": _followers_n(result)}


def _followers_n(result: BacktestResult) -> list[dict[str, Any]]:
    """Return per follower how many signals of all kinds came while it traded, and its history."""
    spans = {s.symbol: s for s in result.spans}
    out = []
    for follower in result.followers:
        studies = [s for s in result.studies if s.follower == follower]
        counted = sum(len(s.signals) - s.skipped for s in studies)
        span = spans.get(follower)
        out.append({"follower": follower, "n": counted, "first": span.first if span else "",
                    "last": span.last if span else ""})
    return out


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
