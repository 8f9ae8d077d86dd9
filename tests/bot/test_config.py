"""Config loading: good and bad YAML fixtures, each bad one with its own message naming key path and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, load_config, parse_config, parse_duration

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "config"
REPO = Path(__file__).resolve().parents[2]

BAD = {
    "unknown_key.yaml": "rules[0].rearm_pc: unknown key (did you mean 'rearm_pct'?) (unknown_key.yaml:9)",
    "wrong_type.yaml": "rules[2].min_gap_days: must be a whole number (wrong_type.yaml:11)",
    "unknown_symbol.yaml": "rules[0].symbols[0]: unknown symbol '^RTU' (did you mean '^RUT'?) (unknown_symbol.yaml:6)",
    "unknown_feed.yaml": "symbols[0].feed: no feed named 'histroy' (did you mean 'history'?) (unknown_feed.yaml:4)",
    "unknown_rule_kind.yaml": "rules[0].kind: unknown rule kind 'new_athh' (did you mean 'new_ath'?) (unknown_rule_kind.yaml:6)",
    "missing_env.yaml": "channels.telegram.token: environment variable RISKON_TEST_SURELY_UNSET_TOKEN is not set (missing_env.yaml:8)",
    "negative_interval.yaml": "feeds.history.every_seconds: must be greater than 0 (negative_interval.yaml:5)",
    "duplicate_rule_id.yaml": "rules[1].id: rule id 'a' is used twice (duplicate_rule_id.yaml:7)",
    "not_yaml.yaml": "not valid YAML",
    "top_level_list.yaml": "(top level): must be a mapping of sections",
    "unknown_section.yaml": "feds: unknown key (did you mean 'feeds'?) (unknown_section.yaml:1)",
    "alias_bomb.yaml": "refusing a possible alias bomb",
    "bad_cooldown.yaml": "rules[0].cooldown: must be a duration like 30m, 6h or 2d (bad_cooldown.yaml:6)",
    "unknown_channel.yaml": "channels.telegramm: unknown channel (did you mean 'telegram'?) (unknown_channel.yaml:6)",
}


@pytest.mark.parametrize("name, message", sorted(BAD.items()))
def test_bad_config_names_key_path_and_line(name, message):
    with pytest.raises(ConfigError) as caught:
        load_config(FIXTURES / "bad" / name, env={})
    assert any(message in problem for problem in caught.value.problems), caught.value.problems


def test_every_bad_fixture_has_an_expected_message():
    assert sorted(p.name for p in (FIXTURES / "bad").glob("*.yaml")) == sorted(BAD)


def test_good_minimal_config_loads_with_defaults():
    config = load_config(FIXTURES / "good_minimal.yaml", env={})
    assert [s.id for s in config.symbols] == ["^RUT"]
    assert config.storage.path == "riskon.db"
    assert config.symbols[0].csv_stem == "RUT"
    [(rule, cfg)] = config.build_rules()
    assert rule.kind == "new_ath" and cfg.symbols == ["^RUT"]


def test_shipped_config_is_valid(market_data):
    config = load_config(REPO / "config.yaml", env={"RISKON_MARKET_DATA": str(market_data)})
    assert config.rules and config.symbols


def test_env_interpolation_fills_secrets_and_defaults():
    text = """
feeds:
  history: {kind: replay, path: "${DATA:-fallback}"}
symbols: []
rules: []
channels:
  telegram: {token: "${TOKEN}"}
"""
    config = parse_config(text, env={"TOKEN": "123:abc"})
    assert config.feeds["history"].settings["path"] == "fallback"
    assert config.channels["telegram"]["token"] == "123:abc"


def test_every_problem_is_reported_at_once():
    text = """
feeds:
  history: {kind: replay, path: data}
symbols:
  - {id: A, feed: nope}
rules:
  - {id: r, kind: new_ath, symbols: [B]}
"""
    with pytest.raises(ConfigError) as caught:
        parse_config(text, env={})
    assert len(caught.value.problems) == 2


@pytest.mark.parametrize("text, seconds", [("30m", 1800), ("6h", 21600), ("2d", 172800), ("1w", 604800), ("soon", None)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds
