"""A rule id kept while its kind changes in config.yaml: the new kind starts afresh, never from the old one's state."""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path

import pytest

from alerts.bars import Bar, utc
from alerts.evaluate import RuleBinding
from bot.config import load_config
from bot.engine import Engine
from storage import Store

REPO = Path(__file__).resolve().parents[2]
DAY0 = utc(2020, 1, 1)
LIVE = utc(2000, 1, 1)


def rising_with_swings(count: int, start: int = 0) -> list[Bar]:
    """Return daily bars that climb with swings: highs, pullbacks and breakouts for every kind to track."""
    bars = []
    for i in range(start, start + count):
        close = 100 * 1.002 ** i * (1 + 0.08 * math.sin(i / 9))
        bars.append(Bar(DAY0 + timedelta(days=i), close, close * 1.01, close * 0.99, close, 1000.0))
    return bars


def default_rules() -> dict[str, object]:
    """Return one rule of each kind, as the default config sets it up."""
    config = load_config(REPO / "config.yaml", env={"RISKON_MARKET_DATA": "."})
    rules: dict[str, object] = {}
    for rule, _ in config.build_rules():
        rules.setdefault(rule.kind, rule)
    return rules


RULE_KINDS = default_rules()
# Pairs whose old state the new kind could not read: KeyError 'ath_time' or 'source', bool not iterable.
CHANGES = [("follow_through", "drawdown"), ("follow_through", "resistance_flip"), ("outflow_divergence", "drawdown"),
           ("outflow_divergence", "pct_move"), ("level_cross", "resistance_flip"), ("new_ath", "follow_through"),
           ("drawdown", "new_ath")]


@pytest.mark.parametrize("before, after", CHANGES, ids=[f"{a}->{b}" for a, b in CHANGES])
def test_a_rule_whose_kind_changed_starts_afresh(before, after):
    # Was the old kind's saved state handed to the new kind: a KeyError on every bar, so every poll of the feed
    # failed ("poll failed unexpectedly"), and none of its symbols' bars were stored or evaluated again.
    store = Store.memory()
    old, new = RULE_KINDS[before], RULE_KINDS[after]
    old.rule_id = new.rule_id = "smallcap_rule"  # the id kept in config.yaml, its kind edited
    Engine(store, [RuleBinding(old, ("IWM",))], ["IWM"]).ingest({"IWM": rising_with_swings(400)}, utc(2022, 1, 1), LIVE)
    assert store.rule_state("smallcap_rule", "IWM")[0] is not None
    engine = Engine(store, [RuleBinding(new, ("IWM",))], ["IWM"])
    report = engine.ingest({"IWM": rising_with_swings(150, start=400)}, utc(2022, 6, 1), LIVE)
    assert report.bars == 150
    fresh = Store.memory()
    Engine(fresh, [RuleBinding(new, ("IWM",))], ["IWM"]).ingest({"IWM": rising_with_swings(150, start=400)},
                                                                 utc(2022, 6, 1), LIVE)
    assert store.rule_state("smallcap_rule", "IWM") == fresh.rule_state("smallcap_rule", "IWM"), \
        "the new kind's state is the one it builds from the bars after the change"
    store.close()
    fresh.close()
