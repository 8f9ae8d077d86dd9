"""Charts as PNG bytes: an alert in its price context, event-study paths, rolling correlation.

Drawn with matplotlib's Agg canvas directly (no pyplot, no display, no global figure state), so charts can
be drawn from any thread. Every function returns None when there is too little data to draw something
honest; a chart is a bonus and never a reason to hold back an alert's text.
"""

from __future__ import annotations

import io
import math
import re
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from alerts.bars import Bar
from alerts.events import AlertEvent

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from alerts.comovement import CoMovement

MIN_BARS = 10
LEVEL_KEYS = ("level", "levels", "resistance", "support", "tracked_levels")
# Colours that read on white and for the common colour-vision deficiencies.
PRICE, ATH, LEVEL, ALERT, FLIP, UP, DOWN = "#1f4e79", "#c55a11", "#7f7f7f", "#c00000", "#2e7d32", "#2e7d32", "#c62828"
FOLLOWER_COLOURS = ("#1f77b4", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")
_NOT_DRAWABLE = re.compile(r"[^\u0000-\uffff]")  # emoji outside the fonts matplotlib ships


def _figure(width: float, height: float, rows: int = 1, ratios: Sequence[float] | None = None, top_inches: float = 0.45):
    from matplotlib.figure import Figure

    # Fixed margins instead of a layout engine: one draw per chart instead of two.
    figure = Figure(figsize=(width, height), dpi=100)
    figure.subplots_adjust(left=0.8 / width, right=1 - 0.2 / width, top=1 - top_inches / height,
                           bottom=0.55 / height, hspace=0.45 * rows / max(height / 2.6, 1))
    if rows == 1:
        return figure, [figure.add_subplot(1, 1, 1)]
    grid = figure.add_gridspec(rows, 1, height_ratios=list(ratios or [1] * rows), left=0.8 / width,
                               right=1 - 0.2 / width, top=1 - top_inches / height, bottom=0.55 / height,
                               hspace=0.12 if ratios else 0.35)
    first = figure.add_subplot(grid[0])
    axes = [first] + [figure.add_subplot(grid[i], sharex=first) for i in range(1, rows)]
    return figure, axes


def _png(figure) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", facecolor="white")
    return buffer.getvalue()


def _clean(text: str) -> str:
    return _NOT_DRAWABLE.sub("", text).strip()


def _style(axis) -> None:
    axis.grid(True, color="#e5e5e5", linewidth=0.8)
    axis.set_axisbelow(True)
    for side in ("top", "right"):
        axis.spines[side].set_visible(False)


def _numbers(values: Any) -> list[float]:
    """Return the finite positive numbers in a value or list of values."""
    items = values if isinstance(values, (list, tuple)) else [values]
    out = []
    for item in items:
        if isinstance(item, Mapping):
            item = item.get("level", item.get("price"))
        if isinstance(item, (int, float)) and not isinstance(item, bool) and math.isfinite(item) and item > 0:
            out.append(float(item))
    return out


def tracked_levels(event: AlertEvent) -> list[float]:
    """Return the price levels an event names (a flip's level, a resistance, a crossed line)."""
    levels: list[float] = []
    for key in LEVEL_KEYS:
        if key in event.values:
            levels.extend(_numbers(event.values[key]))
    return sorted(set(levels))


def alert_chart(
    event: AlertEvent,
    bars: Sequence[Bar],
    *,
    events: Iterable[AlertEvent] = (),
    flows: Sequence[tuple[datetime, float]] = (),
    levels: Sequence[float] = (),
    days: int = 365,
    title: str | None = None,
) -> bytes | None:
    """Draw the symbol's price around an alert: ATH line, tracked levels, flips, the alert's bar, and flows."""
    final = sorted((b for b in bars if b.final), key=lambda b: b.time)
    if len(final) < MIN_BARS:
        return None
    by_high = event.values.get("by") == "high"
    running, ath = [], -math.inf
    for bar in final:
        ath = max(ath, bar.high if by_high else bar.close)
        running.append(ath)
    last_time = max(final[-1].time, event.bar_time)
    start = min(event.bar_time, last_time) - timedelta(days=days)
    shown = [(b, a) for b, a in zip(final, running) if b.time >= start]
    if len(shown) < MIN_BARS:
        return None
    if not any(timedelta(0) <= event.bar_time - b.time <= timedelta(days=7) for b, _ in shown):
        return None  # no bar at the alert: the chart could not show what the alert is about
    times = [b.time for b, _ in shown]
    flows_shown = [(t, f) for t, f in flows if t >= start and math.isfinite(f)]
    rows = 2 if flows_shown else 1
    figure, axes = _figure(8, 5.2 if rows == 2 else 4.5, rows, [3, 1] if rows == 2 else None)
    price_axis = axes[0]
    _style(price_axis)
    price_axis.plot(times, [b.close for b, _ in shown], color=PRICE, linewidth=1.4, label=f"{event.symbol} close")
    price_axis.step(times, [a for _, a in shown], where="post", color=ATH, linewidth=1.0, linestyle="--",
                    label="all-time high" + (" (intraday)" if by_high else " (close)"))
    closes_by_time = {b.time: b.close for b, _ in shown}
    events = [e for e in events if e.symbol == event.symbol and e.bar_time in closes_by_time]
    flips = [e for e in events if e.kind.endswith("flip") and not e.kind.startswith("failed")]
    failed = [e for e in events if e.kind.startswith("failed")]
    drawn = set(tracked_levels(event)) | {float(x) for x in levels if x and math.isfinite(x)}
    for flip in flips + failed:
        drawn |= set(tracked_levels(flip))
    all_levels = sorted(drawn)
    low = min(b.low for b, _ in shown)
    high = max(b.high for b, _ in shown)
    for index, level in enumerate(all_levels):
        if low * 0.5 <= level <= high * 1.5:  # a level far off the chart would flatten the price line
            price_axis.axhline(level, color=LEVEL, linewidth=1.0, linestyle=":",
                               label="tracked level" if index == 0 else None)
            # Labelled mid-chart: the legend sits top left and the alert's own label at the right.
            price_axis.text(0.5, level, f"level {level:,.2f}", transform=price_axis.get_yaxis_transform(),
                            fontsize=8, color=LEVEL, ha="center", va="bottom",
                            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1})
    if flips:
        price_axis.scatter([e.bar_time for e in flips], [closes_by_time[e.bar_time] for e in flips], marker="^",
                           s=60, color=FLIP, zorder=4, label="resistance turned support")
    if failed:
        price_axis.scatter([e.bar_time for e in failed], [closes_by_time[e.bar_time] for e in failed], marker="x",
                           s=50, color=DOWN, zorder=4, label="failed flip")
    others = [e for e in events if "flip" not in e.kind and e.bar_time != event.bar_time]
    if others:
        price_axis.scatter([e.bar_time for e in others], [closes_by_time[e.bar_time] for e in others], marker="o",
                           s=14, color=ATH, zorder=3, label="earlier alerts")
    alert_price = closes_by_time.get(event.bar_time, _numbers(event.values.get("price"))[0]
                                     if _numbers(event.values.get("price")) else None)
    price_axis.axvline(event.bar_time, color=ALERT, linewidth=1.0, alpha=0.6)
    if alert_price is not None:
        price_axis.scatter([event.bar_time], [alert_price], s=90, color=ALERT, zorder=5, label="this alert")
        price_axis.annotate(f"{event.bar_time:%Y-%m-%d}\n{alert_price:,.2f}", (event.bar_time, alert_price),
                            textcoords="offset points", xytext=(-8, 10), ha="right", fontsize=8, color=ALERT)
    price_axis.set_ylabel("price")
    price_axis.legend(loc="upper left", fontsize=8, frameon=False)
    price_axis.set_title(_clean(title or f"{event.symbol}: {event.kind.replace('_', ' ')} ({event.rule_id})"),
                         fontsize=11, loc="left")
    if rows == 2:
        flow_axis = axes[1]
        _style(flow_axis)
        flow_axis.bar([t for t, _ in flows_shown], [f / 1e6 for _, f in flows_shown], width=1.0,
                      color=[UP if f >= 0 else DOWN for _, f in flows_shown])
        flow_axis.axhline(0, color="#444444", linewidth=0.6)
        flow_axis.set_ylabel("net flow $M")
    for label in axes[-1].get_xticklabels():
        label.set_rotation(20)
        label.set_horizontalalignment("right")
    if rows == 2:
        for label in axes[0].get_xticklabels():
            label.set_visible(False)
    return _png(figure)


def signals_chart(symbol: str, days: Sequence[date], closes: Sequence[float], signal_days: Sequence[date],
                  title: str | None = None) -> bytes | None:
    """Draw a leader's whole history on a log scale with each signal marked."""
    if len(closes) < MIN_BARS:
        return None
    figure, (axis,) = _figure(9, 3.6)
    _style(axis)
    axis.plot(days, closes, color=PRICE, linewidth=1.0)
    index = {d: c for d, c in zip(days, closes)}
    marked = [d for d in signal_days if d in index]
    axis.scatter(marked, [index[d] for d in marked], s=28, color=ALERT, zorder=3, label="signal (episode start)")
    axis.set_yscale("log")
    _log_ticks(axis)
    axis.set_ylabel(f"{symbol} (log)")
    axis.legend(loc="upper left", fontsize=8, frameon=False)
    axis.set_title(_clean(title or f"{symbol} and its signals"), fontsize=11, loc="left")
    return _png(figure)


def _median_path(paths: np.ndarray) -> np.ndarray:
    """Return the median across rows per day, where at least half the rows still have data."""
    import numpy as np

    if not len(paths):
        return np.full(paths.shape[1] if paths.ndim == 2 else 0, np.nan)
    counts = np.isfinite(paths).sum(axis=0)
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN days: no median, drawn as a gap
            median = np.nanmedian(paths, axis=0)
    return np.where(counts >= max(1, math.ceil(len(paths) / 2)), median, np.nan)


def baseline_median(grid: np.ndarray, paths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the median path over every baseline start day, for drawing beside the signals' median."""
    return grid, _median_path(paths)


def study_chart(
    title: str,
    paths_by_follower: Mapping[str, tuple[np.ndarray, np.ndarray]],
    horizons: Sequence[int] = (),
    baselines: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> bytes | None:
    """Draw each follower's path after every signal, indexed to 100, with the median path on top."""
    import numpy as np

    drawable = {name: (grid, paths) for name, (grid, paths) in paths_by_follower.items()
                if paths.size and np.isfinite(paths).any()}
    if not drawable:
        return None
    figure, axes = _figure(9, 3.4 * len(drawable), len(drawable), top_inches=0.75)
    for index, (axis, (name, (grid, paths))) in enumerate(zip(axes, drawable.items())):
        _style(axis)
        colour = FOLLOWER_COLOURS[index % len(FOLLOWER_COLOURS)]
        for row in paths:
            axis.plot(grid, row, color=colour, alpha=0.35, linewidth=0.8)
        if baselines and name in baselines:
            base_grid, base_median = baselines[name]
            axis.plot(base_grid, base_median, color="#555555", linewidth=1.6, linestyle="--",
                      label="median of every day (baseline)")
        axis.plot(grid, _median_path(paths), color="black", linewidth=2.2, label="median of signals")
        axis.axhline(100, color="#444444", linewidth=0.7)
        for h in horizons:
            axis.axvline(h, color="#bbbbbb", linewidth=0.7, linestyle="--")
        axis.set_yscale("log")
        axis.set_ylabel(f"{name}, signal day = 100")
        axis.set_title(_clean(f"{name} after each signal ({len(paths)} signals)"), fontsize=10, loc="left")
        axis.legend(loc="upper left", fontsize=8, frameon=False)
        _log_ticks(axis)
    axes[-1].set_xlabel("days after the signal")
    figure.suptitle(_clean(title), fontsize=11, x=0.01, ha="left")
    return _png(figure)


def _log_ticks(axis) -> None:
    from matplotlib.ticker import FuncFormatter, LogLocator

    axis.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    axis.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))


def comovement_chart(leader: str, moves: Sequence[CoMovement]) -> bytes | None:
    """Draw the rolling correlation of each follower with the leader, one panel per window."""
    moves = [m for m in moves if len(m.rolling_days) >= MIN_BARS]
    if not moves:
        return None
    windows = moves[0].windows
    figure, axes = _figure(9, 2.6 * len(windows), len(windows))
    for axis, window in zip(axes, windows):
        _style(axis)
        for index, move in enumerate(moves):
            axis.plot(move.rolling_days.astype("datetime64[D]"), move.rolling[:, move.windows.index(window)],
                      color=FOLLOWER_COLOURS[index % len(FOLLOWER_COLOURS)], linewidth=1.0, label=move.follower)
        axis.axhline(0, color="#444444", linewidth=0.7)
        axis.set_ylim(-1, 1)
        axis.set_ylabel(f"{window}-day corr.")
        axis.legend(loc="upper left", fontsize=8, frameon=False, ncol=len(moves))
    axes[0].set_title(_clean(f"Rolling correlation of daily returns with {leader}"), fontsize=11, loc="left")
    return _png(figure)
