"""The article's claims, checked against the data with the configured rules: a verdict and the numbers behind it.

Each check reads the backtest's own alerts (the configured rules over the history) and closes; nothing is typed in
by hand except the claim being tested. A claim the data cannot reach says so and why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np

from alerts.closes import Closes, as_date, day_number
from alerts.events import AlertEvent
from bot.config import Config

if TYPE_CHECKING:  # pragma: no cover
    from bot.backtest.run import BacktestResult

CYCLE_BREAKOUT_DAYS = 365  # a new high after a year or more under the old one: a new cycle's breakout
CYCLE_TOP_DAYS = 730  # the cycle top: the highest close within two years after the signal
CLAIMED_GAIN_PCT = 380.0
NEAR_PCT = 10.0  # a claimed percentage "holds" within this many points of its own size (342..418 for 380)
FLOW_GAP_DAYS = 30  # flow records further apart than this are separate stretches of data


@dataclass(frozen=True)
class Claim:
    """One claim of the article: what it says, the verdict from the data, and the numbers behind it."""

    title: str
    quote: str
    verdict: str  # "holds" | "partly" | "does not hold" | "cannot be checked"
    summary: str
    numbers: tuple[str, ...]


def _close_on(closes: Closes, day: date) -> tuple[date, float] | None:
    """Return the last close at or before a day (at most 5 days old)."""
    at = int(np.searchsorted(closes.days, day_number(day), side="right")) - 1
    if at < 0 or day_number(day) - int(closes.days[at]) > 5:
        return None
    return as_date(closes.days[at]), float(closes.values[at])


def _highest(closes: Closes) -> tuple[date, float]:
    """Return the day and close of the highest close (the first such day)."""
    at = int(np.argmax(closes.values))
    return as_date(closes.days[at]), float(closes.values[at])


def _first(alerts: Sequence[AlertEvent], rule_kind: str, symbol: str, kind: str, after: date,
           before: date) -> AlertEvent | None:
    return next((a for a in alerts if a.kind == kind and a.symbol == symbol and a.rule_id == rule_kind
                 and after <= a.bar_time.date() <= before), None)


def _rule_ids(config: Config, kind: str) -> list[str]:
    return [r.id for r in config.rules if r.enabled and r.kind == kind]


def cycle_breakouts(config: Config, alerts: Sequence[AlertEvent], symbol: str) -> list[AlertEvent]:
    """Return the new-high alerts of a symbol that came a year or more after its previous high."""
    ids = set(_rule_ids(config, "new_ath"))
    return [a for a in alerts if a.rule_id in ids and a.symbol == symbol and a.kind == "new_ath"
            and (a.values.get("days_since_previous_ath") or 0) >= CYCLE_BREAKOUT_DAYS]


def own_high_within(closes: Closes, day: date, days: int) -> date | None:
    """Return the first day within `days` after `day` the series closed above every earlier close, if any."""
    values = closes.values
    running = np.maximum.accumulate(values)
    is_high = np.zeros(values.size, dtype=bool)
    is_high[1:] = values[1:] > running[:-1]
    start = day_number(day)
    window = (closes.days > start) & (closes.days <= start + days)
    hits = np.flatnonzero(window & is_high)
    return as_date(closes.days[hits[0]]) if hits.size else None


def check_flip_to_top(config: Config, result: BacktestResult, leader: str = "^RUT", follower: str = "BTC") -> Claim:
    """Check 'the late-2020 ^RUT flip, then BTC roughly +380 % to the cycle top'."""
    title = f"Late-2020 {leader} resistance flip, then {follower} to the cycle top"
    quote = (f"The Russell 2000 turned prior resistance into support in late 2020; {follower} went on to rise "
             f"roughly {CLAIMED_GAIN_PCT:.0f}% to the cycle top.")
    closes = result.closes.get(follower)
    flip = next((a for rule in _rule_ids(config, "resistance_flip")
                 if (a := _first(result.alerts, rule, leader, "resistance_flip", date(2020, 9, 1),
                                 date(2021, 1, 31)))), None)
    if flip is None or closes is None or not len(closes):
        why = f"no {follower} history" if closes is None or not len(closes) else \
            f"the configured rules found no {leader} resistance flip between September 2020 and January 2021"
        return Claim(title, quote, "cannot be checked", why, ())
    day = flip.bar_time.date()
    entry = _close_on(closes, day)
    if entry is None:
        return Claim(title, quote, "cannot be checked", f"{follower} has no close near {day}", ())
    top_day, top = _highest(closes.between(day, day + timedelta(days=CYCLE_TOP_DAYS)))
    gain = (top / entry[1] - 1) * 100
    needed = top / (1 + CLAIMED_GAIN_PCT / 100)
    before_top = closes.between(None, top_day)
    low_enough = np.flatnonzero(before_top.values <= needed)
    since = as_date(before_top.days[low_enough[-1]]) if low_enough.size else None
    level, broke = flip.values.get("level"), flip.values.get("break_time")
    numbers = [
        f"{leader} flip confirmed {day} (level {level}, {flip.values.get('source', '')}; broke {broke})",
        f"{follower} close {entry[0]}: {entry[1]:,.2f}; cycle top {top_day}: {top:,.2f}: {gain:+.0f}%",
        f"+{CLAIMED_GAIN_PCT:.0f}% needs an entry at or under {needed:,.2f}: "
        + (f"{follower} last closed there on {since}, {(day - since).days} days before the flip" if since
           else f"{follower} never closed that low before the top"),
    ]
    verdict = "holds" if abs(gain - CLAIMED_GAIN_PCT) <= CLAIMED_GAIN_PCT * NEAR_PCT / 100 else "does not hold"
    summary = (f"from the flip {follower} rose {gain:+.0f}% to the {top_day} top; "
               + (f"~{CLAIMED_GAIN_PCT:.0f}% is true only from a close of {since} or earlier" if since else
                  f"~{CLAIMED_GAIN_PCT:.0f}% is not reached from any earlier close"))
    return Claim(title, quote, verdict, summary, tuple(numbers))


def check_breakouts_then_follower_high(config: Config, result: BacktestResult, leader: str = "^RUT",
                                       follower: str = "BTC") -> Claim:
    """Check 'in the three prior instances where ^RUT reached new highs, BTC followed with its own breakout'."""
    title = f"{leader} new highs, then {follower}'s own breakout"
    quote = ("In the three prior instances where the Russell 2000 reached new highs, Bitcoin followed with its own "
             "breakout.")
    closes = result.closes.get(follower)
    episodes = cycle_breakouts(config, result.alerts, leader)
    if closes is None or not len(closes) or not episodes:
        return Claim(title, quote, "cannot be checked", f"no {leader} cycle breakouts or no {follower} history", ())
    first = as_date(closes.days[0])
    covered = [a for a in episodes if a.bar_time.date() >= first]
    numbers, within = [], {30: 0, 90: 0}
    for alert in covered:
        day = alert.bar_time.date()
        hits = {h: own_high_within(closes, day, h) for h in (30, 90)}
        for h, hit in hits.items():
            within[h] += hit is not None
        first_high = own_high_within(closes, day, 3650)
        numbers.append(f"{day}: {leader} above its {alert.values.get('previous_ath_time')} high after "
                       f"{alert.values.get('days_since_previous_ath')} days; {follower}'s next own high "
                       + (f"{first_high} (+{(first_high - day).days} d)" if first_high else "not in the data"))
    gone = len(episodes) - len(covered)
    if gone:
        numbers.append(f"{gone} earlier breakout(s) before {follower}'s data starts ({first})")
    n = len(covered)
    verdict = "holds" if n and within[90] == n else "partly" if within[90] else "does not hold"
    summary = (f"{n} {leader} breakouts to a new high after a year or more below the old one while {follower} "
               f"traded; {follower} made its own high within 30 days after {within[30]} of them, within 90 days "
               f"after {within[90]}")
    return Claim(title, quote, verdict, summary, tuple(numbers))


def _study_row(result: BacktestResult, leader: str, kind: str, follower: str, horizon: int):
    study = next((s for s in result.studies if s.leader == leader and s.kind == kind and s.follower == follower), None)
    row = next((r for r in study.rows if r.horizon == horizon), None) if study else None
    return study, row


def check_follow_through(config: Config, result: BacktestResult, leader: str = "^RUT",
                         follower: str = "ETH") -> Claim:
    """Check that ETH follows through after ^RUT highs: the event study and the follow-through rule."""
    title = f"{follower} follow-through after {leader} highs"
    quote = f"{follower} follows through after the Russell 2000 makes new highs."
    numbers = []
    verdicts = []
    for horizon in (30, 90):
        study, row = _study_row(result, leader, "new_ath", follower, horizon)
        if row is None or row.test is None:
            continue
        t = row.test
        numbers.append(f"+{horizon}d: n {t.n}, median {row.signals.median:+.1f}% vs every day "
                       f"{row.baseline.median:+.1f}%, effect {t.effect:+.1f} pts"
                       + (f" (95% {t.low:+.1f}..{t.high:+.1f}), p {t.p_value:.2f}" if t.p_value is not None else "")
                       + f": {t.verdict}")
        verdicts.append(t.verdict)
    follow_ids = set(_rule_ids(config, "follow_through"))
    outcomes = [a for a in result.alerts if a.rule_id in follow_ids and a.symbol == follower
                and a.values.get("leader") == leader]
    confirmed = sum(a.kind == "follow_through" for a in outcomes)
    missed = sum(a.kind == "no_follow_through" for a in outcomes)
    if outcomes:
        numbers.append(f"follow-through rule: {follower} confirmed {confirmed} of {confirmed + missed} {leader} "
                       "breakout windows (a new high, its own flip or a 10% move within 30 days)")
    if not numbers:
        return Claim(title, quote, "cannot be checked", f"no {leader} new-high signals while {follower} traded", ())
    if "better than chance" in verdicts:
        verdict = "holds"
    elif "worse than chance" in verdicts:
        verdict = "does not hold"
    else:
        verdict = "cannot be checked" if all(v == "too few signals" for v in verdicts) else "does not hold"
    summary = ("better than a random day of the same years" if verdict == "holds" else
               "no better than a random day of the same years" if verdict == "does not hold" else
               "too few signals to tell")
    if outcomes:
        summary += f"; the follow-through rule confirmed {confirmed} of {confirmed + missed} windows"
    return Claim(title, quote, verdict, summary, tuple(numbers))


def check_altcoins(config: Config, result: BacktestResult, leader: str = "IWM", follower: str = "ALTS",
                   years: Sequence[int] = (2017, 2021)) -> Claim:
    """Check 'altcoins surged after IWM broke above prior highs in 2017 and 2021', where the data reaches."""
    title = f"{follower} after {leader} broke above its prior highs ({', '.join(map(str, years))})"
    quote = f"Altcoins surged after {leader} broke above prior highs in {' and '.join(map(str, years))}."
    closes = result.closes.get(follower)
    breakouts = cycle_breakouts(config, result.alerts, leader)
    numbers, checked, surged = [], 0, 0
    for year in years:
        # The breakout that opened the year's run: the last cycle breakout up to the end of that year.
        opening = [a for a in breakouts if a.bar_time.date() <= date(year, 12, 31)
                   and a.bar_time.date() >= date(year - 1, 1, 1)]
        if not opening:
            numbers.append(f"{year}: no {leader} breakout above a year-old high in {year - 1}–{year}")
            continue
        day = opening[0].bar_time.date()
        entry = _close_on(closes, day) if closes is not None and len(closes) else None
        if closes is None or entry is None:
            starts = as_date(closes.days[0]) if closes is not None and len(closes) else None
            numbers.append(f"{year}: {leader} broke out {day}; {follower} has no price then"
                           + (f" (the composite starts {starts}, when all its members trade)" if starts else ""))
            continue
        checked += 1
        moves = []
        for h in (30, 90):
            out = _close_on(closes, day + timedelta(days=h))
            if out and out[0] > entry[0]:
                moves.append((h, (out[1] / entry[1] - 1) * 100))
        _, row = _study_row(result, leader, "new_ath", follower, 90)
        base = f" (every day of those years: {row.baseline.median:+.0f}% over 90 d)" if row and row.baseline.median \
            is not None else ""
        surged += any(h == 90 and move > 0 for h, move in moves)
        numbers.append(f"{year}: {leader} broke out {day}; {follower} " +
                       ", ".join(f"{m:+.0f}% in {h} d" for h, m in moves) + base)
    if not checked:
        return Claim(title, quote, "cannot be checked", "the composite has no prices at those breakouts",
                     tuple(numbers))
    verdict = "holds" if surged == len(years) else "partly" if surged else "does not hold"
    summary = f"checked {checked} of {len(years)} breakouts (where {follower} has prices); up after 90 days in {surged}"
    return Claim(title, quote, verdict, summary, tuple(numbers))


@dataclass(frozen=True)
class FlowStretch:
    """A run of known flow records of one fund, with its rally leg: from the start to the highest close in it."""

    fund: str
    first: date
    last: date
    records: int
    net_usd: float
    top_day: date | None = None  # the fund's highest close within the stretch
    rally_pct: float | None = None  # the fund's move from the first day to that close
    rally_net_usd: float | None = None  # the flows over that leg


def flow_stretches(fund: str, flows: Sequence[tuple[datetime, float]], closes: Closes | None,
                   gap_days: int = FLOW_GAP_DAYS) -> list[FlowStretch]:
    """Split a fund's flows into runs of records no more than `gap_days` apart, each with its rally leg."""
    rows = sorted((when.date(), float(flow)) for when, flow in flows)
    out: list[FlowStretch] = []
    start = 0
    for end in range(1, len(rows) + 1):
        if end < len(rows) and (rows[end][0] - rows[end - 1][0]).days <= gap_days:
            continue
        part = rows[start:end]
        first, last = part[0][0], part[-1][0]
        net = sum(f for _, f in part)
        stretch = FlowStretch(fund, first, last, len(part), net)
        if closes is not None and len(closes):
            inside = closes.between(first, last)
            opening = _close_on(closes, first)
            if len(inside) and opening is not None:
                top_day, top = _highest(inside)
                stretch = FlowStretch(fund, first, last, len(part), net, top_day,
                                      (top / opening[1] - 1) * 100,
                                      sum(f for day, f in part if day <= top_day))
        out.append(stretch)
        start = end
    return out


def check_outflows(config: Config, result: BacktestResult, funds: Sequence[str] = ("IWM", "IWN")) -> Claim:
    """Check 'small-cap ETFs saw outflows during the rally' where flow data exists, and say what it covers."""
    title = "Small-cap ETF outflows during the rally"
    quote = "Small-cap ETFs saw outflows even as the rally went on."
    numbers, stretches, hollow = [], 0, 0
    for fund in funds:
        flows = result.flows.get(fund, [])
        if not flows:
            numbers.append(f"{fund}: no flow data in this history")
            continue
        for part in flow_stretches(fund, flows, result.closes.get(fund)):
            stretches += 1
            line = (f"{fund} {part.first} to {part.last} ({part.records} records): net flow "
                    f"{part.net_usd / 1e9:+.2f} B USD")
            if part.top_day is not None and part.rally_pct is not None and part.rally_net_usd is not None:
                line += (f"; from {part.first} to its high of {part.top_day}: {fund} {part.rally_pct:+.1f}%, "
                         f"net flow {part.rally_net_usd / 1e9:+.2f} B USD")
                hollow += part.rally_pct > 0 and part.rally_net_usd < 0
            numbers.append(line)
    if not stretches:
        return Claim(title, quote, "cannot be checked", "this history has no ETF flow data for " + ", ".join(funds),
                     tuple(numbers))
    verdict = "holds" if hollow == stretches else "partly" if hollow else "does not hold"
    summary = (f"in {hollow} of {stretches} stretches with flow data, money left the fund while it rallied to its "
               "high; the flow data covers only the stretches listed")
    return Claim(title, quote, verdict, summary, tuple(numbers))


def check_claims(config: Config, result: BacktestResult) -> list[Claim]:
    """Check every claim of the article that the history can reach."""
    return [check_flip_to_top(config, result), check_breakouts_then_follower_high(config, result),
            check_follow_through(config, result), check_altcoins(config, result), check_outflows(config, result)]
