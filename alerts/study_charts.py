"""Charts of the backtest's statistics: lead/lag cross-correlation, over the whole history and rolling over time."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import numpy as np

from alerts.charts import _clean, _png, _style
from alerts.comovement import LeadLag

SPLIT_COLOURS = {"before": "#7f7f7f", "since": "#c55a11"}


def lead_lag_chart(leader: str, items: Sequence[LeadLag]) -> bytes | None:
    """Draw, per follower, the cross-correlation at each lag (top) and its rolling one-year view over time (bottom)."""
    from matplotlib.figure import Figure

    daily = [i for i in items if i.period == "day" and any(r is not None for r in i.overall)]
    if not daily:
        return None
    weekly = {i.follower: i for i in items if i.period == "week"}
    columns = len(daily)
    figure = Figure(figsize=(4.2 * columns + 0.8, 6.4), dpi=100)
    grid = figure.add_gridspec(2, columns, height_ratios=[1, 1.2], left=0.07, right=0.9, top=0.9, bottom=0.08,
                               hspace=0.35, wspace=0.22)
    figure.suptitle(_clean(f"Lead and lag with {leader}: correlation of {leader}'s return with the follower's "
                           f"return k days later (k > 0: {leader} moves first)"), fontsize=11, x=0.07, ha="left")
    image = None
    for column, item in enumerate(daily):
        top = figure.add_subplot(grid[0, column])
        _style(top)
        lags = np.array(item.lags)
        band = item.band or 0.0
        top.axhspan(-band, band, color="#eeeeee", zorder=0, label="noise band")
        top.axvspan(-item.overlap_days, item.overlap_days, color="#f6e7d8", zorder=0, label="same-day overlap")
        top.plot(lags, _floats(item.overall), color="#1f4e79", linewidth=1.6, label="daily, all")
        for name, values in item.since:
            colour = SPLIT_COLOURS["since" if name.startswith("since") else "before"]
            top.plot(lags, _floats(values), color=colour, linewidth=1.0, label=f"daily, {name}")
        week = weekly.get(item.follower)
        if week is not None:
            top.plot(np.array(week.lags), _floats(week.overall), color="#2e7d32", linewidth=1.0, linestyle="--",
                     label="weekly, all")
        top.axhline(0, color="#444444", linewidth=0.7)
        top.axvline(0, color="#444444", linewidth=0.7)
        top.set_title(_clean(f"{item.follower}"), fontsize=10, loc="left")
        top.set_xlabel("lag k (days)", fontsize=8)
        top.tick_params(labelsize=8)
        if column == 0:
            top.set_ylabel("correlation", fontsize=8)
            top.legend(loc="upper left", fontsize=6.5, frameon=False)
        bottom = figure.add_subplot(grid[1, column])
        if item.rolling.size:
            ends = [date(1970, 1, 1) + timedelta(days=int(d)) for d in item.rolling_ends]
            image = bottom.imshow(item.rolling.T, aspect="auto", origin="lower", cmap="RdBu_r", vmin=-0.6, vmax=0.6,
                                  extent=(_year(ends[0]), _year(ends[-1]), lags[0] - 0.5, lags[-1] + 0.5),
                                  interpolation="nearest")
            bottom.axhline(0, color="#444444", linewidth=0.6)
            bottom.axvline(2020, color="#444444", linewidth=0.6, linestyle=":")
        bottom.set_title("rolling 1-year window, daily returns", fontsize=8, loc="left")
        bottom.set_xlabel("window end (year)", fontsize=8)
        bottom.tick_params(labelsize=8)
        if column == 0:
            bottom.set_ylabel("lag k (days)", fontsize=8)
    if image is not None:
        bar_axis = figure.add_axes((0.92, 0.08, 0.015, 0.38))
        figure.colorbar(image, cax=bar_axis).ax.tick_params(labelsize=7)
    return _png(figure)


def _floats(values: Sequence[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype="float64")


def _year(day: date) -> float:
    return day.year + (day.timetuple().tm_yday - 1) / 365.25
