"""Config loading: good and bad YAML fixtures, each bad one with its own message naming key path and line."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from alerts.durations import parse_duration
from alerts.policy import NotifyPolicy
from bot.config import ConfigError, load_config, parse_config

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "config"
REPO = Path(__file__).resolve().parents[2]

BAD = {
    "unknown_key.yaml": "rules[0].rearm_pc: unknown key (did you mean 'rearm_pct'?) (unknown_key.yaml:9)",
    "wrong_type.yaml": "rules[2].min_gap_days: must be a whole number (wrong_type.yaml:11)",
    "unknown_symbol.yaml": "rules[0].symbols[0]: unknown symbol '^RTU' (did you mean '^RUT'?) (unknown_symbol.yaml:6)",
    "unknown_feed.yaml": "symbols[0].feed: no feed named 'histroy' (did you mean 'history'?) (unknown_feed.yaml:4)",
    "unknown_rule_kind.yaml": "rules[0].kind: unknown rule kind 'new_athh' (did you mean 'new_ath'?) (unknown_rule_kind.yaml:6)",
    "missing_env.yaml":
        "channels.telegram.token: environment variable RISKON_TEST_SURELY_UNSET_TOKEN is not set (missing_env.yaml:8)",
    "negative_interval.yaml": "feeds.history.every_seconds: must be greater than 0 (negative_interval.yaml:5)",
    "duplicate_rule_id.yaml": "rules[1].id: rule id 'a' is used twice (duplicate_rule_id.yaml:7)",
    "not_yaml.yaml": "not valid YAML",
    "top_level_list.yaml": "(top level): must be a mapping of sections",
    "unknown_section.yaml": "feds: unknown key (did you mean 'feeds'?) (unknown_section.yaml:1)",
    "alias_bomb.yaml": "refusing a possible alias bomb",
    "bad_cooldown.yaml": "rules[0].cooldown: must be a duration like 30m, 6h or 2d (bad_cooldown.yaml:6)",
    "unknown_channel.yaml": "channels.telegramm: unknown channel (did you mean 'telegram'?) (unknown_channel.yaml:6)",
    # A second key of the same name used to win silently: the database moved, or every rule vanished.
    "duplicate_section.yaml": "storage: key given twice, on line 1 and line 9; the second would silently replace the "
                              "first (duplicate_section.yaml:9)",
    "duplicate_rules.yaml": "rules: key given twice, on line 5 and line 9",
    "no_rules.yaml": "rules: no rules, so riskon would never alert; add at least one (docs/rules.md) (no_rules.yaml:5)",
    "unknown_leader.yaml": "rules[1].leaders[0]: no symbol named '^RTU' (did you mean '^RUT'?) (unknown_leader.yaml:11)",
    "unknown_level_symbol.yaml": "rules[0].levels.IWW: 'IWW' is not one of this rule's symbols (did you mean 'IWN'?) "
                                 "(unknown_level_symbol.yaml:12)",
    "unknown_composite_member.yaml": "feeds.alts.indexes.ALTS.members[1]: no symbol named 'XPR' (did you mean 'XRP'?) "
                                     "(unknown_composite_member.yaml:7)",
    # The parser notices the end of the file; the mistake is where the quote or bracket was opened.
    "unclosed_quote.yaml": "not valid YAML: found unexpected end of stream (unclosed_quote.yaml:11); the quote "
                           "opened on line 9 is never closed",
    "unclosed_list.yaml": "(unclosed_list.yaml:11); the '[' opened on line 9 is never closed",
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


def test_a_cooldown_is_parsed_once_into_the_rules_policy():
    config = parse_config("""
feeds: {history: {kind: replay, path: .}}
symbols: [{id: "^RUT", feed: history}]
rules: [{id: a, kind: new_ath, symbols: ["^RUT"], frequency: once_per_bar, cooldown: 6h}]
""", env={})
    assert config.rules[0].cooldown == timedelta(hours=6)
    [binding] = config.bindings()
    assert (binding.rule.rule_id, binding.symbols) == ("a", ("^RUT",))
    assert binding.policy == NotifyPolicy("once_per_bar", timedelta(hours=6))


def test_shipped_config_is_valid(market_data):
    config = load_config(REPO / "config.yaml", env={"RISKON_MARKET_DATA": str(market_data)})
    assert config.rules and config.symbols


def test_env_interpolation_fills_secrets_and_defaults():
    text = """
feeds:
  history: {kind: replay, path: "${DATA:-fallback}"}
symbols:
  - {id: IWM, feed: history}
rules:
  - {id: a, kind: new_ath, symbols: [IWM]}
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


def test_follow_through_names_every_unknown_rule_it_refers_to():
    with pytest.raises(ConfigError) as caught:
        load_config(FIXTURES / "bad" / "unknown_leader.yaml", env={})
    assert caught.value.problems == [
        "rules[1].leaders[0]: no symbol named '^RTU' (did you mean '^RUT'?) (unknown_leader.yaml:11)",
        "rules[1].trigger_rules[0]: no rule named 'rut_aht' (did you mean 'rut_ath'?) (unknown_leader.yaml:12)",
        "rules[1].confirm_rules[0]: no rule named 'btc_flip' (rules: follow, rut_ath) (unknown_leader.yaml:13)",
    ]


def test_trigger_rules_may_name_a_rule_kind():
    text = (FIXTURES / "bad" / "unknown_leader.yaml").read_text()
    text = text.replace('["^RTU"]', '["^RUT"]').replace("[rut_aht]", "[new_ath]").replace("[btc_flip]", "[]")
    config = parse_config(text, env={})
    assert config.rules[1].params["trigger_rules"] == ["new_ath"]


def test_the_shipped_config_has_no_duplicate_or_dangling_names(market_data):
    # The checks above would refuse it; this keeps the cross-checks honest against the real file.
    config = load_config(REPO / "config.yaml", env={"RISKON_MARKET_DATA": str(market_data)})
    assert {"crypto_follow", "smallcap_flip"} <= {rule.id for rule in config.rules}


def test_a_duplicated_key_inside_a_rule_is_an_error_too():
    text = """
feeds:
  history: {kind: replay, path: data}
symbols:
  - {id: IWM, feed: history}
rules:
  - id: a
    kind: new_ath
    symbols: [IWM]
    rearm_pct: 2
    rearm_pct: 20
"""
    with pytest.raises(ConfigError) as caught:
        parse_config(text, env={})
    assert caught.value.problems == [
        ("rules[0].rearm_pct: key given twice, on line 10 and line 11; the second would silently replace the first "
         "(config.yaml:11)")
    ]


def test_merge_keys_are_not_duplicates():
    text = """
feeds:
  history: {kind: replay, path: data}
symbols:
  - {id: IWM, feed: history}
  - {id: IWN, feed: history}
rules:
  - &ath {id: a, kind: new_ath, symbols: [IWM], rearm_pct: 2}
  - {<<: *ath, id: b, symbols: [IWN]}
"""
    config = parse_config(text, env={})
    assert [(r.id, r.params["rearm_pct"]) for r in config.rules] == [("a", 2), ("b", 2)]


@pytest.mark.parametrize("hidden, escaped", [(r"\u202e", r"\u202e"), (r"\e[31m", r"\x1b[31m"), (r"\u200b", r"\u200b")])
def test_hidden_characters_are_escaped_when_a_problem_echoes_them(hidden, escaped):
    # `hidden` is YAML's escape for the character, so the loaded value holds the character itself.
    # A right-to-left override would make the echoed name read backwards; an ANSI escape would recolour the terminal.
    text = f"""
feeds:
  history: {{kind: replay, path: data}}
symbols:
  - {{id: IWM, feed: history}}
rules:
  - {{id: a, kind: new_ath, symbols: ["IWM{hidden}"], "rearm{hidden}": 1}}
"""
    with pytest.raises(ConfigError) as caught:
        parse_config(text, env={})
    message = "\n".join(caught.value.problems)
    assert f"unknown symbol 'IWM{escaped}'" in message
    assert f"rules[0].rearm{escaped}: unknown key" in message
    assert all(char.isprintable() for char in message if char != "\n")


def test_the_example_rehearsal_config_is_valid():
    config = load_config(REPO / "examples" / "rehearsal.yaml", env={"TELEGRAM_BOT_TOKEN": "123:abc"})
    assert "telegram" in config.channels and config.symbol("ALTS") is not None


@pytest.mark.parametrize("written,span", [("6h", timedelta(hours=6)), ("90s", timedelta(seconds=90)),
                                          ("2d", timedelta(days=2)), ("1.5h", timedelta(minutes=90))])
def test_a_dumped_cooldown_reads_as_written_and_loads_again(written, span):
    text = f"""
feeds: {{history: {{kind: replay, path: .}}}}
symbols: [{{id: "^RUT", feed: history}}]
rules: [{{id: a, kind: new_ath, symbols: ["^RUT"], cooldown: {written}}}]
"""
    dumped = parse_config(text, env={}).model_dump(mode="json", exclude={"source_path"})
    assert parse_duration(dumped["rules"][0]["cooldown"]) == span.total_seconds()
    assert parse_config(yaml.safe_dump(dumped), env={}).rules[0].cooldown == span
