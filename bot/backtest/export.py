"""Write a backtest's result as CSV files and one JSON document."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from alerts.closes import as_date
from alerts.comovement import DEFAULT_WINDOWS
from alerts.messages import format_alert
from bot.backtest.run import BacktestResult
from bot.backtest.words import jsonable


def write_csv(result: BacktestResult, folder: str | Path) -> list[Path]:
    """Write alerts, signals, per-signal outcomes, the study and the co-movement as CSV files."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []

    def table(name: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        path = folder / name
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            for row in rows:
                writer.writerow(["" if v is None else v for v in row])
        written.append(path)

    table("alerts.csv", ["date", "rule", "kind", "symbol", "text", "values_json"],
          ((f"{e.bar_time:%Y-%m-%d}", e.rule_id, e.kind, e.symbol, format_alert(e).replace("\n", " | "),
            json.dumps(jsonable(dict(e.values)))) for e in result.alerts))
    table("signals.csv", ["day", "leader", "rule", "kind", "alerts_in_episode", "price"],
          ((s.day, s.symbol, s.rule_id, s.kind, s.alerts, s.price) for s in result.signals))
    table("outcomes.csv", ["signal_day", "leader", "rule", "follower", "horizon_days", "status", "entry_day",
                           "entry_price", "exit_day", "exit_price", "return_pct", "needs_data_to", "own_high_after_days",
                           "own_flip_after_days"],
          ((o.signal_day, s.leader, s.rule_id, o.follower, o.horizon, o.status, o.entry_day, o.entry_price, o.exit_day,
            o.exit_price, o.return_pct, o.needs_data_to, o.ath_after_days, o.flip_after_days)
           for s in result.studies for o in s.outcomes))
    table("study.csv", ["leader", "rule", "kind", "follower", "horizon_days", "signals", "median_pct", "mean_pct",
                        "share_positive_pct", "worst_pct", "best_pct", "baseline_days", "baseline_median_pct",
                        "baseline_mean_pct", "baseline_share_positive_pct", "baseline_worst_pct", "baseline_best_pct",
                        "own_high_within", "own_flip_within", "not_yet", "baseline_first_year", "baseline_last_year",
                        "tested_n", "effect_pts", "effect_low_pts", "effect_high_pts", "p_value", "verdict"],
          ((s.leader, s.rule_id, s.kind, s.follower, r.horizon, r.signals.count, r.signals.median, r.signals.mean,
            r.signals.share_positive, r.signals.worst, r.signals.best, r.baseline.count, r.baseline.median,
            r.baseline.mean, r.baseline.share_positive, r.baseline.worst, r.baseline.best, r.ath_within, r.flip_within,
            r.not_yet,
            *(s.baseline_years or (None, None)),
            *((r.test.n, r.test.effect, r.test.low, r.test.high, r.test.p_value, r.test.verdict) if r.test
              else (None,) * 6)) for s in result.studies for r in s.rows))
    windows = result.comovements[0].windows if result.comovements else DEFAULT_WINDOWS
    table("comovement_by_year.csv", ["leader", "follower", "year", "days", "correlation",
                                     *[f"mean_rolling_{w}d" for w in windows]],
          ((m.leader, m.follower, y.year, y.days, y.correlation, *y.mean_rolling) for m in result.comovements
           for y in m.years))
    table("comovement_rolling.csv", ["leader", "follower", "day", *[f"rolling_{w}d" for w in windows]],
          ((m.leader, m.follower, as_date(day), *[None if not np.isfinite(v) else round(float(v), 6) for v in row])
           for m in result.comovements for day, row in zip(m.rolling_days, m.rolling)))
    table("lead_lag.csv", ["leader", "follower", "period", "lag_days", "correlation", "pairs",
                           *[name for name, _ in (result.lead_lags[0].since if result.lead_lags else ())]],
          ((m.leader, m.follower, m.period, k, r, m.pairs, *[values[i] for _, values in m.since])
           for m in result.lead_lags for i, (k, r) in enumerate(zip(m.lags, m.overall))))
    table("claims.csv", ["claim", "verdict", "summary", "numbers"],
          ((c.title, c.verdict, c.summary, " | ".join(c.numbers)) for c in result.claims))
    if result.sweep is not None:
        table("sweep.csv", ["parameters", "signal", "follower", "horizon_days", "n", "effect_pts", "p_value",
                            "q_value_bh", "verdict"],
              ((r.label, r.signal, r.follower, r.horizon, r.n, r.effect, r.p_value, r.q_value, r.verdict)
               for r in result.sweep.rows))
    return written


def to_json(result: BacktestResult) -> dict[str, Any]:
    """Return the whole result as JSON-ready data."""
    return jsonable({
        "config": result.config_path, "source": result.source, "from": result.start, "to": result.end,
        "horizons_days": list(result.horizons), "episode_gap_days": result.episode_gap_days,
        "leaders": list(result.leaders), "followers": list(result.followers),
        "history": [asdict(s) for s in result.spans], "problems": result.problems,
        "alerts": [{"date": f"{e.bar_time:%Y-%m-%d}", "bar_time": e.bar_time, "rule": e.rule_id, "kind": e.kind,
                    "symbol": e.symbol, "values": dict(e.values), "text": format_alert(e)} for e in result.alerts],
        "signals": [asdict(s) for s in result.signals],
        "studies": [{"leader": s.leader, "rule": s.rule_id, "kind": s.kind, "follower": s.follower,
                     "baseline_years": s.baseline_years, "signals_before_follower_data": s.skipped,
                     "horizons": [asdict(r) for r in s.rows], "outcomes": [asdict(o) for o in s.outcomes]}
                    for s in result.studies],
        "comovement": [{"leader": m.leader, "follower": m.follower, "windows_days": list(m.windows),
                        "overall_correlation": m.overall, "days": m.days,
                        "by_year": [asdict(y) for y in m.years]} for m in result.comovements],
        "claims": [asdict(c) for c in result.claims],
        "lead_lag": [{"leader": m.leader, "follower": m.follower, "period": m.period, "lags_days": list(m.lags),
                      "correlation": list(m.overall), "pairs": m.pairs, "noise_band": m.band,
                      "reading": m.reading(), "split": {name: list(values) for name, values in m.since}}
                     for m in result.lead_lags],
        "rules": [asdict(c) for c in result.coverage],
        "sweep": None if result.sweep is None else {
            "grid": {key: list(values) for key, values in result.sweep.grid}, "correction": result.sweep.correction,
            "tests": result.sweep.tests, "warning": result.sweep.warning(), "seconds": round(result.sweep.seconds, 3),
            "rows": [asdict(r) for r in result.sweep.rows]},
        "seconds": round(result.seconds, 3),
    })


def write_json(result: BacktestResult, path: str | Path) -> Path:
    """Write the result as one JSON document."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_json(result), indent=1, allow_nan=False), encoding="utf-8")
    return path
