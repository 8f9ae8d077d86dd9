"""Fund flows over history (replay and backtest), derived from shares-outstanding files as the live feed does.

Each fund of a `flows` feed names its history files (`history_csv`, stems in the --data folder). They are read
by the live feed's own CSV import (`read_flows_csv`), cleaned by its `clean_shares` and turned into flows by its
`implied_flows` (all three in fund_shares.py): a flow is the change in shares outstanding x NAV (the fund's close
where the file has no NAV), dated on the later count. A change across more than `max_gap_days` is unknown, not a
flow, so the flows have holes; `FlowHistory.spans` says where they are known, and the outflow rules are judged only
there.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Mapping

from bot.feeds.fund_shares import SharesCount, clean_shares, day_stamp, implied_flows, read_flows_csv
from bot.feeds.settings import FlowsSettings

log = logging.getLogger("riskon.feeds.flows")


@dataclass
class FlowHistory:
    """Daily net flows per fund over history, where they are known, and what was wrong with the files."""

    # fund -> (day, net flow USD, shares outstanding, NAV used), oldest first
    flows: dict[str, list[tuple[datetime, float, float, float]]] = field(default_factory=dict)
    # fund -> the (first, last) days of each run of known flows (no hole longer than the rules' lag)
    spans: dict[str, list[tuple[date, date]]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def series(self, fund: str) -> list[tuple[datetime, float]]:
        """Return a fund's flows as (day, net flow USD), the shape rules read."""
        return [(when, flow) for when, flow, _, _ in self.flows.get(fund, ())]

    def coverage(self, rules: Any) -> list[str]:
        """Say, per outflow rule and symbol, where the flows are known: the only spans the rule is judged on."""
        lines = []
        for rule in rules:
            if rule.kind != "outflow_divergence":
                continue
            for symbol in rule.symbols:
                spans = self.spans.get(symbol)
                if not spans:
                    lines.append(f"{symbol}: no flow data; rule {rule.id} never evaluated")
                    continue
                known = ", ".join(f"{a} → {b}" for a, b in spans)
                lines.append(f"{symbol}: no flow data before {spans[0][0]}; rule {rule.id} evaluated on {known}")
        return lines

    def store_into(self, store: Any, now: datetime) -> None:
        """Write the flows into a store's flows table, where the engine reads them (idempotent)."""
        for fund, rows in self.flows.items():
            store.upsert_flows(fund, [(when, flow, shares, nav, "history") for when, flow, shares, nav in rows], now)


def load_flow_history(folder: str | Path, feeds: Mapping[str, Any],
                      closes_of: Callable[[str], Mapping[date, float]], span_gap_days: int = 4) -> FlowHistory:
    """Derive every configured fund's flows from its history files in `folder`.

    `feeds` is the config's feeds (name -> FeedConfig); every `flows` feed's funds with `history_csv` are read.
    `closes_of(symbol)` gives a symbol's daily closes, the NAV stand-in. A run of known flows ends where two
    flows are more than `span_gap_days` apart (the outflow rules' default `max_flow_lag_days`).
    """
    folder = Path(folder)
    history = FlowHistory()
    for feed in feeds.values():
        if getattr(feed, "kind", None) != "flows":
            continue
        settings = FlowsSettings(**feed.settings)
        for fund, source in settings.funds.items():
            counts: list[SharesCount] = []
            for stem in source.history_csv:
                path = folder / f"{stem}.csv"
                if not path.exists():
                    history.problems.append(f"{fund}: no file {path.name} in {folder}")
                    continue
                try:
                    _, read, problems = read_flows_csv(path, fund)
                except (ValueError, OSError, UnicodeDecodeError) as exc:
                    history.problems.append(f"{fund}: {exc}")
                    continue
                history.problems.extend(f"{fund}: {p}" for p in problems)
                counts.extend(read)
            if not counts:
                continue
            kept, dropped = clean_shares(counts, settings.max_daily_change_pct, settings.max_unchanged_days)
            for count, reason in dropped:
                history.problems.append(f"{fund}: shares count of {count.day} ({count.source}) ignored: {reason}")
            closes = closes_of(source.nav_symbol or fund)
            shares_of = {c.day: c.shares for c in kept}
            rows = [(day_stamp(day), flow, shares_of[day], nav)
                    for day, flow, nav in implied_flows(kept, closes, settings.max_gap_days)]
            if rows:
                history.flows[fund] = rows
                history.spans[fund] = known_spans([when.date() for when, *_ in rows], span_gap_days)
    # One warning, not one per row: a stale stretch in a snapshot file is dozens of lines that say one thing.
    # The backtest lists every problem in its notes; each is logged at INFO for a replay run with --log-level INFO.
    for problem in history.problems:
        log.info("flow history: %s", problem)
    if history.problems:
        more = f" (and {len(history.problems) - 1} more at INFO)" if len(history.problems) > 1 else ""
        log.warning("flow history: %s%s", history.problems[0], more)
    return history


def known_spans(days: list[date], gap_days: int) -> list[tuple[date, date]]:
    """Return the runs of days no more than `gap_days` apart, as (first, last)."""
    spans: list[tuple[date, date]] = []
    for day in days:
        if spans and day - spans[-1][1] <= timedelta(days=gap_days):
            spans[-1] = (spans[-1][0], day)
        else:
            spans.append((day, day))
    return spans
