"""new_ath: table tests on constructed series (ties, first bar, gaps, rearm, intraday vs close, truncation)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from pydantic import ValidationError

from alerts.bars import Bar, utc
from alerts.evaluate import step_rule
from alerts.rules import RULES
from alerts.rules.base import RuleContext

START = utc(2021, 1, 4)


def bars_from(closes, highs=None, gaps=None, final_last=True):
    """Build daily bars from closes (and optional highs); gaps maps bar index to extra days skipped before it."""
    out, day = [], START
    for i, close in enumerate(closes):
        day += timedelta(days=(gaps or {}).get(i, 0) + (1 if i else 0))
        high = (highs or closes)[i]
        out.append(Bar(day, close, max(high, close), min(close, high) * 0.99, close, 1000,
                       final=final_last or i < len(closes) - 1))
    return out


def run(bars, truncated_since=None, **params):
    # Constructed series are a few bars long: no warm-up unless the test asks for one.
    rule = RULES["new_ath"]("ath", RULES["new_ath"].Params(**{"min_history_days": 0, **params}))
    state, fired = None, []
    for bar in bars:
        state, events = step_rule(rule, state, "^RUT", bar, RuleContext(truncated_since=truncated_since))
        fired.extend(events)
    return fired, state


@pytest.mark.parametrize(
    "closes, params, fired_at",
    [
        pytest.param([100], {}, [], id="first bar sets the mark, no alert"),
        pytest.param([100, 101], {}, [1], id="second bar above the first"),
        pytest.param([100, 100], {}, [], id="a tie is not a new high"),
        pytest.param([100, 99, 100], {}, [], id="back to the high is a tie"),
        pytest.param([100, 101, 102, 103], {}, [1, 2, 3], id="every new high alerts without rearm"),
        pytest.param([100, 101, 101.5, 102.1], {"rearm_pct": 1.0}, [1, 3], id="rearm needs 1% above the last alert"),
        pytest.param([100, 101, 102.01], {"rearm_pct": 1.0}, [1, 2], id="exactly rearm pct re-arms"),
        pytest.param([100, 90, 95, 99.9], {}, [], id="a recovery below the high is silent"),
    ],
)
def test_new_ath_by_close(closes, params, fired_at):
    """Each case: closes, parameters and the bars that alert."""
    fired, _ = run(bars_from(closes), **params)
    expected_days = [bars_from(closes)[i].time for i in fired_at]
    assert [e.bar_time for e in fired] == expected_days


def test_intraday_high_counts_only_with_by_high():
    bars = bars_from([100, 100, 100], highs=[100, 105, 100])
    by_close, _ = run(bars)
    by_high, _ = run(bars, by="high")
    assert by_close == []
    assert [e.values["price"] for e in by_high] == [105]
    assert by_high[0].values["by"] == "high"


def test_close_rule_ignores_a_forming_bar_and_high_rule_alerts_on_it():
    bars = bars_from([100, 110], final_last=False)
    by_close, close_state = run(bars)
    by_high, high_state = run(bars, by="high")
    assert by_close == []
    assert [e.values["price"] for e in by_high] == [110]
    # A forming bar never moves the committed state: the final bar decides.
    assert close_state["ath"] == 100 and high_state["ath"] == 100


def test_fresh_episode_after_the_gap_rearms_and_says_so():
    closes = [100, 101, 101.2]
    bars = bars_from(closes, gaps={2: 60})
    fired, _ = run(bars, rearm_pct=5.0, min_gap_days=30)
    assert [e.values["price"] for e in fired] == [101, 101.2]
    assert fired[0].values["fresh_episode"] is False
    assert fired[1].values["fresh_episode"] is True
    assert fired[1].values["days_since_previous_ath"] == 61


def test_gap_below_threshold_is_the_same_episode():
    fired, _ = run(bars_from([100, 101, 102], gaps={2: 10}), min_gap_days=30)
    assert [e.values["fresh_episode"] for e in fired] == [False, False]


def test_truncated_history_says_highest_since_not_all_time():
    since = utc(2024, 10, 1)
    fired, _ = run(bars_from([100, 101]), truncated_since=since)
    assert fired[0].values["all_time"] is False
    assert fired[0].values["since"] == "2024-10-01"


def test_state_round_trips_through_json_and_resumes_identically():
    closes = [100, 102, 101, 103, 99, 104, 104, 105]
    bars = bars_from(closes)
    whole, _ = run(bars, rearm_pct=1.0)
    first, state = run(bars[:4], rearm_pct=1.0)
    rule = RULES["new_ath"]("ath", RULES["new_ath"].Params(rearm_pct=1.0, min_history_days=0))
    state = json.loads(json.dumps(state))
    rest = []
    for bar in bars[4:]:
        state, events = step_rule(rule, state, "^RUT", bar, RuleContext())
        rest.extend(events)
    assert first + rest == whole


def test_dedup_key_is_stable_and_names_rule_symbol_kind_and_bar():
    fired, _ = run(bars_from([100, 101]))
    again, _ = run(bars_from([100, 101]))
    assert fired[0].dedup_key == again[0].dedup_key == "ath|^RUT|new_ath|2021-01-05T00:00Z"


@pytest.mark.parametrize("params", [{"rearm_pct": -1}, {"by": "open"}, {"min_gap_days": 1.5}, {"window": 3}])
def test_bad_parameters_are_refused(params):
    with pytest.raises(ValidationError) as refused:
        RULES["new_ath"].Params(**params)
    assert next(iter(params)) in str(refused.value)  # the message names the parameter


def test_highs_of_the_first_year_set_the_mark_silently():
    """The second bar of a series is above all before it, which says nothing: no alert before a year of history."""
    closes = [100 + i for i in range(400)]
    fired, state = run(bars_from(closes), min_history_days=365, rearm_pct=0.0)
    assert fired[0].bar_time == bars_from(closes)[365].time and len(fired) == 35
    assert state["first_time"] == bars_from(closes)[0].time.isoformat()


def test_a_state_saved_before_warm_up_existed_is_warm():
    """A live database's state from before the warm-up parameter (no first_time) keeps alerting at once."""
    bars = bars_from([100, 101])
    rule = RULES["new_ath"]("ath", RULES["new_ath"].Params())
    old = {"ath": 100.0, "ath_time": bars[0].time.isoformat(), "last_alerted": None}
    _, events = step_rule(rule, old, "^RUT", bars[1], RuleContext())
    assert len(events) == 1


def test_golden_no_alert_in_the_first_year_of_any_series(market_data):
    """^RUT's second bar (1987-09-11), IWM's (2000-05-30), IWN's (2000-07-31) and ETH's (2017-11-14) used to alert."""
    from tests.alerts.drive import load_csv

    for stem in ("RUT", "IWM", "IWN", "ETH-USD", "BTC-USD"):
        bars = load_csv(stem)
        fired, _ = run(bars, min_history_days=365, rearm_pct=2.0)
        first = bars[0].time
        assert fired and (fired[0].bar_time - first).days >= 365, stem
