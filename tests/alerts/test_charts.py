"""Charts: PNG bytes for an alert, the event study and the co-movement; None when there is too little to draw."""

from __future__ import annotations

import io
import math
from datetime import date, timedelta

import numpy as np
import pytest
from PIL import Image

from alerts.bars import Bar, utc
from alerts.charts import alert_chart, comovement_chart, signals_chart, study_chart, tracked_levels
from alerts.closes import Closes
from alerts.comovement import comovement
from alerts.events import AlertEvent
from alerts.study import follower_paths

START = utc(2024, 1, 1)


def rising(count: int, forming_last: bool = False) -> list[Bar]:
    bars = []
    for i in range(count):
        close = 100 + 10 * math.sin(i / 9) + i * 0.3
        bars.append(Bar(START + timedelta(days=i), close, close + 1, close - 1, close,
                        final=not (forming_last and i == count - 1)))
    return bars


def ath_event(bar: Bar, **values) -> AlertEvent:
    return AlertEvent("rut_ath", "new_ath", "^RUT", bar.time, {"price": bar.close, "by": "close", **values})


def picture(png: bytes) -> Image.Image:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return Image.open(io.BytesIO(png))


def test_an_alert_chart_is_a_png_of_the_price_around_the_alert():
    bars = rising(400)
    png = alert_chart(ath_event(bars[-1]), bars, title="📈 ^RUT new all-time high: close 220.00")
    assert picture(png).size == (800, 450)


def test_flips_levels_and_flows_are_drawn_and_flows_add_a_panel():
    bars = rising(200)
    flip = AlertEvent("rut_flip", "resistance_flip", "^RUT", bars[150].time, {"level": 130.0, "price": bars[150].close})
    failed = AlertEvent("rut_flip", "failed_flip", "^RUT", bars[120].time, {"level": 125.0})
    flows = [(b.time, (-1) ** i * 5e7) for i, b in enumerate(bars)]
    png = alert_chart(ath_event(bars[-1]), bars, events=[flip, failed], flows=flows, levels=[140.0])
    assert picture(png).size == (800, 520)


@pytest.mark.parametrize(
    ("values", "levels"),
    [
        ({"level": 2442.74}, [2442.74]),
        ({"levels": [1.5, {"level": 2.5}, "x", None, float("nan"), -3]}, [1.5, 2.5]),
        ({"resistance": 10, "support": 8}, [8.0, 10.0]),
        ({"price": 5.0, "flag": True}, []),
    ],
)
def test_tracked_levels_are_read_from_the_event(values, levels):
    assert tracked_levels(AlertEvent("r", "k", "S", START, values)) == levels


@pytest.mark.parametrize("count", [0, 1, 9])
def test_too_little_data_gives_no_chart(count):
    bars = rising(count)
    event = ath_event(bars[-1]) if bars else AlertEvent("r", "new_ath", "^RUT", START, {})
    assert alert_chart(event, bars) is None


def test_forming_bars_and_an_alert_far_before_the_window_are_handled():
    bars = rising(30, forming_last=True)
    assert alert_chart(ath_event(bars[-2]), bars) is not None
    # An alert a year before the bars: nothing of it to show beside the price.
    old = AlertEvent("r", "new_ath", "^RUT", START - timedelta(days=800), {"price": 1.0})
    assert alert_chart(old, bars) is None


def test_signals_chart_and_its_minimum():
    days = [date(2020, 1, 1) + timedelta(days=i) for i in range(50)]
    closes = [100 + i for i in range(50)]
    assert picture(signals_chart("^RUT", days, closes, [days[10], date(1999, 1, 1)])).size[0] == 900
    assert signals_chart("^RUT", days[:3], closes[:3], []) is None


def test_study_chart_draws_paths_and_needs_at_least_one():
    follower = Closes.of([date(2021, 1, 1) + timedelta(days=i) for i in range(400)], np.linspace(100, 200, 400))
    grid, paths = follower_paths([date(2021, 2, 1), date(2021, 6, 1)], follower, 90)
    png = study_chart("after each signal", {"BTC": (grid, paths), "ETH": (grid, paths)}, (7, 30, 90),
                      {"BTC": (grid, paths[0])})
    assert picture(png).size == (900, 680)
    empty = np.full((0, 91), np.nan)
    assert study_chart("nothing", {"BTC": (grid, empty)}) is None
    assert study_chart("nothing", {}) is None


def test_comovement_chart_draws_each_window():
    days = [d for d in (date(2021, 1, 1) + timedelta(days=i) for i in range(420)) if d.weekday() < 5][:300]
    rng = np.random.default_rng(1)
    leader = Closes.of(days, 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 300))))
    follower = Closes.of(days, 100 * np.exp(np.cumsum(rng.normal(0, 0.02, 300))))
    move = comovement("^RUT", leader, "BTC", follower)
    assert picture(comovement_chart("^RUT", [move])).size == (900, 520)
    short = comovement("^RUT", Closes.of(days[:5], leader.values[:5]), "BTC", Closes.of(days[:5], follower.values[:5]))
    assert comovement_chart("^RUT", [short]) is None
