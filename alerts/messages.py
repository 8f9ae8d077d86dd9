"""Alert text: pure functions from events to the words a trader reads."""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

from alerts.events import AlertEvent


def format_price(value: float) -> str:
    """Format a price with sensible precision for its size."""
    if value >= 1000:
        return f"{value:,.2f}"
    if value >= 1:
        return f"{value:,.2f}"
    return f"{value:.6g}"


def format_usd(value: float) -> str:
    """Format a dollar amount as $19.5B / $350M / $12K."""
    sign = "-" if value < 0 else ""
    size = abs(value)
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if size >= limit:
            return f"{sign}${size / limit:.1f}{suffix}"
    return f"{sign}${size:,.0f}"


def format_pct(value: float, signed: bool = True) -> str:
    """Format a percentage, signed by default."""
    return f"{value:+.1f}%" if signed else f"{value:.1f}%"


def _new_ath(event: AlertEvent, v: Mapping[str, Any]) -> str:
    label = "close" if v.get("by") == "close" else "intraday high"
    if v.get("all_time", True):
        head = f"📈 {event.symbol} new all-time high: {label} {format_price(v['price'])}"
    else:
        head = (f"📈 {event.symbol} highest since {v.get('since')}: {label} {format_price(v['price'])} "
                "(history before that date not available)")
    lines = [
        head,
        f"{format_pct(v['pct_above_previous'])} above the previous high {format_price(v['previous_ath'])} "
        f"of {v['previous_ath_time']}",
    ]
    if v.get("fresh_episode"):
        lines.append(f"Fresh breakout: the first new high in {v['days_since_previous_ath']} days.")
    return "\n".join(lines)


def _generic(event: AlertEvent, v: Mapping[str, Any]) -> str:
    figures = ", ".join(f"{k} {format_price(x) if isinstance(x, float) else x}" for k, x in v.items())
    return f"🔔 {event.symbol} {event.kind.replace('_', ' ')}: {figures}"


def _level_source(v: Mapping[str, Any]) -> str:
    source = v.get("source", "configured")
    return "" if source == "configured" else f" ({source})"


def _resistance_flip(event: AlertEvent, v: Mapping[str, Any]) -> str:
    return "\n".join([
        f"🔁 {event.symbol} resistance turned support at {format_price(v['level'])}{_level_source(v)}",
        f"Broke out {v['break_time']} (close {format_price(v['break_close'])}), retest from {v['retest_time']} "
        f"(low {format_price(v['retest_low'])}), then held {v['hold_bars']} closes above.",
        f"Close {format_price(v['price'])}, {format_pct(v['pct_above_level'])} over the level.",
    ])


def _failed_flip(event: AlertEvent, v: Mapping[str, Any]) -> str:
    stage = "after the retest" if v.get("retested") else "before any retest"
    return "\n".join([
        f"⚠️ {event.symbol} failed flip at {format_price(v['level'])}{_level_source(v)}: back below the level {stage}",
        f"Close {format_price(v['price'])}, {format_pct(v['pct_from_level'])} from the level; "
        f"the breakout of {v['break_time']} (close {format_price(v['break_close'])}) did not hold.",
    ])


def _outflow_divergence(event: AlertEvent, v: Mapping[str, Any]) -> str:
    window = "YTD" if v["window"] == "YTD" else f"in {v['window'].rstrip('d')} trading days"
    left = format_usd(-v["net_flow_usd"])
    share = f" ({v['outflow_pct_of_assets']:.1f}% of assets)" if v.get("outflow_pct_of_assets") is not None else ""
    high = ", at a new all-time high," if v.get("new_high") else ""
    return "\n".join([
        f"🕳️ {event.symbol} {format_pct(v['return_pct'])} {window}{high} while {left} left the fund{share}",
        f"Hollow rally: price {format_price(v['base_close'])} on {v['base_time']} → {format_price(v['price'])}; "
        f"net flow {format_usd(v['net_flow_usd'])} over {v['flow_days']} days of flow data.",
    ])


CONFIRMED_BY = {"new_ath": "a new all-time high", "resistance_flip": "a resistance flip", "move": "the move"}
TRIGGER_NAMES = {"new_ath": "new all-time high", "resistance_flip": "resistance flip", "level_cross": "level cross",
                 "pct_move": "move", "outflow_divergence": "outflow divergence"}


def _trigger(v: Mapping[str, Any]) -> str:
    name = TRIGGER_NAMES.get(v["trigger_kind"], v["trigger_kind"].replace("_", " "))
    also = f" ({', '.join(v['also'])} too)" if v.get("also") else ""
    return f"{v['leader']}'s {name} of {v['trigger_time']}{also}"


def _follow_through(event: AlertEvent, v: Mapping[str, Any]) -> str:
    days = v["days_after"]
    when = "on the same day as" if days == 0 else f"{days} day{'s' if days != 1 else ''} after"
    how = " and ".join(CONFIRMED_BY.get(c, c) for c in v["confirmed_by"])
    return "\n".join([
        f"🚀 {event.symbol} followed {v['leader']}: {how}, {when} {_trigger(v)}",
        f"{event.symbol} close {format_price(v['price'])} on {v['confirmed_on']}, {format_pct(v['move_pct'])} "
        f"from its trigger-day close {format_price(v['ref_close'])} (window {v['window_days']} days).",
    ])


def _no_follow_through(event: AlertEvent, v: Mapping[str, Any]) -> str:
    return "\n".join([
        f"💤 {event.symbol} did not follow {v['leader']}: no breakout within {v['window_days']} days of "
        f"{_trigger(v)}",
        f"{event.symbol} close {format_price(v['price'])}, {format_pct(v['move_pct'])} from its trigger-day close "
        f"{format_price(v['ref_close'])}.",
    ])


def _level_cross(event: AlertEvent, v: Mapping[str, Any]) -> str:
    arrow, way = ("⬆️", "above") if v["direction"] == "up" else ("⬇️", "below")
    previous = f" (previous close {format_price(v['prev_close'])})" if v.get("prev_close") is not None else ""
    return (f"{arrow} {event.symbol} closed {way} {format_price(v['level'])}: {format_price(v['price'])}"
            f"{previous}, {format_pct(v['pct_from_level'])} from the level")


def _pct_move(event: AlertEvent, v: Mapping[str, Any]) -> str:
    arrow = "⬆️" if v["direction"] == "up" else "⬇️"
    return (f"{arrow} {event.symbol} {format_pct(v['move_pct'])} in {v['bars']} bars: {format_price(v['price'])}, "
            f"from {format_price(v['from_close'])} on {v['from_time']}")


def _drawdown(event: AlertEvent, v: Mapping[str, Any]) -> str:
    high = "all-time high" if v.get("all_time", True) else f"highest close since {v.get('since')}"
    return (f"📉 {event.symbol} {v['drawdown_pct']:.1f}% below its {high} (past the {v['threshold_pct']:g}% mark): "
            f"close {format_price(v['price'])} against {format_price(v['ath'])} of {v['ath_time']}")


def _unprofitable_share(event: AlertEvent, v: Mapping[str, Any]) -> str:
    fund, _, series = event.symbol.partition(":")
    of = "of index weight" if series.endswith("WEIGHT") else "of members"
    previous = f" (previous snapshot {v['prev_close']:.0f} %)" if v.get("prev_close") is not None else ""
    if v["direction"] == "up":
        head = f"⚠️ {fund} fragility: {v['price']:.0f} % {of} lose money over 12 months, above the {v['level']:g} % mark"
    else:
        head = f"✅ {fund} fragility: {v['price']:.0f} % {of} lose money over 12 months, back below {v['level']:g} %"
    return head + previous


FORMATTERS: dict[str, Callable[[AlertEvent, Mapping[str, Any]], str]] = {
    "new_ath": _new_ath,
    "resistance_flip": _resistance_flip,
    "failed_flip": _failed_flip,
    "outflow_divergence": _outflow_divergence,
    "follow_through": _follow_through,
    "no_follow_through": _no_follow_through,
    "level_cross": _level_cross,
    "pct_move": _pct_move,
    "drawdown": _drawdown,
    "unprofitable_share": _unprofitable_share,
}


def format_alert(event: AlertEvent, notes: Sequence[str] = ()) -> str:
    """Render an alert as plain text: a headline, the figures, context notes, the bar date and the rule."""
    body = FORMATTERS.get(event.kind, _generic)(event, event.values)
    context = "".join(f"\n{note}" for note in notes)
    t = event.bar_time  # the date as strftime("%Y-%m-%d") writes it, without its cost
    return f"{body}{context}\nBar: {t.year}-{t.month:02d}-{t.day:02d} · rule {event.rule_id}"
