"""Config values that validate yet can never work are refused at load, naming the key and the line."""

from __future__ import annotations

import pytest

from bot.config import ConfigError, load_config, parse_config
from storage import Store
from storage.base import StorageError

BASE = """feeds: {history: {kind: replay, path: "."}}
symbols:
  - {id: "^RUT", feed: history, csv: RUT}
rules:
  - {id: rut_ath, kind: new_ath, symbols: ["^RUT"]}
"""


@pytest.mark.parametrize("admins, shown", [
    ('["@alice"]', "'@alice'"),  # a Telegram @name: no sender's id is ever that
    ('["${RISKON_ADMIN:-}"]', "''"),  # an unset variable with an empty default
    ("[123, null]", "'None'"),
    ("[2.5]", "'2.5'"),
    ('["telegram:"]', "'telegram:'"),
    ('["matrix:123"]', "'matrix:123'"),
])
def test_an_admin_that_is_not_a_user_id_is_refused(admins, shown):
    # Were kept as text ("None", "", "@alice") that no sender matches: the operator's own /pause was refused.
    with pytest.raises(ConfigError) as refused:
        parse_config(BASE + f"admins: {admins}\n", "config.yaml", env={})
    assert refused.value.problems == [
        f"admins: {shown} is not a user id: write the number, alone or after its chat service (123456789, "
        "telegram:123456789, discord:123456789012345678) (config.yaml:6)"]


def test_admin_ids_alone_or_after_their_chat_service_are_taken():
    config = parse_config(BASE + 'admins: [123456789, "telegram:900", "discord:1180000000000009999"]\n',
                          "config.yaml", env={})
    assert config.admins == ["123456789", "telegram:900", "discord:1180000000000009999"]


def test_a_database_path_in_the_home_folder_is_expanded(monkeypatch, tmp_path):
    # No shell reads config.yaml: "~/riskon.db" made a folder named "~" in the working directory.
    monkeypatch.setenv("HOME", str(tmp_path))
    config = parse_config(BASE + "storage: {path: ~/riskon.db}\n", "config.yaml", env={})
    assert config.storage.path == str(tmp_path / "riskon.db")


def test_an_empty_database_path_is_refused():
    # Was "cannot open database .: unable to open database file" at the first start.
    with pytest.raises(ConfigError) as refused:
        parse_config(BASE + 'storage: {path: ""}\n', "config.yaml", env={})
    assert refused.value.problems == ["storage.path: must name the database file, e.g. riskon.db (config.yaml:6)"]


def test_a_database_path_that_is_a_folder_says_so(tmp_path):
    # Was SQLite's "unable to open database file".
    with pytest.raises(StorageError) as refused:
        Store.open(tmp_path)
    assert str(refused.value) == (f"cannot open database {tmp_path}: it is a folder; name a file in it, e.g. "
                                  f"{tmp_path / 'riskon.db'}")


@pytest.mark.parametrize("token, problem", [
    ("", "is empty (its environment variable is set to nothing?)"),
    ("123456:ABC-def\r", "has a space or line break at its start or end (copied with a newline or a Windows line "
                         "end?); the value is not shown"),
    (" 123456:ABC-def", "has a space or line break at its start or end (copied with a newline or a Windows line "
                        "end?); the value is not shown"),
])
def test_a_telegram_token_with_a_usual_slip_says_which(token, problem):
    # Were "must be a bot token like 123456:ABC-def": with the value hidden, a trailing \r could not be seen.
    text = BASE + 'channels: {telegram: {token: "${TELEGRAM_BOT_TOKEN}"}}\n'
    with pytest.raises(ConfigError) as refused:
        parse_config(text, "config.yaml", env={"TELEGRAM_BOT_TOKEN": token})
    assert refused.value.problems == [f"channels.telegram.token: {problem} (config.yaml:6)"]
    assert token.strip() not in str(refused.value) or not token.strip()


def test_an_endless_stream_named_as_the_config_is_refused_after_a_bounded_read(tmp_path):
    # `riskon check-config /dev/zero` read until the memory ran out.
    with pytest.raises(ConfigError) as refused:
        load_config("/dev/zero")
    assert refused.value.problems == ["/dev/zero: file is larger than 1000 kB; not a riskon config"]


def test_an_exchange_ccxt_does_not_have_is_a_config_error():
    # check-config said "Config OK" of `exchange: krakn`; only `riskon run` refused it.
    text = BASE.replace("feeds: {history: {kind: replay, path: \".\"}}",
                        "feeds: {history: {kind: replay, path: \".\"}, kraken: {kind: exchange, exchange: krakn}}")
    with pytest.raises(ConfigError) as refused:
        parse_config(text, "config.yaml", env={})
    assert refused.value.problems == [
        "feeds.kraken.exchange: ccxt has no exchange 'krakn' (did you mean 'kraken'?) (config.yaml:1)"]
    assert parse_config(text.replace("krakn", "kraken"), "config.yaml", env={}).feeds["kraken"]


def test_the_exchange_ids_read_from_ccxts_folder_are_the_ones_ccxt_lists():
    # check-config reads the ids from ccxt's package folder to avoid importing it: a ccxt upgrade that lays its
    # package out differently must fail here, not refuse a real exchange in a trader's config.
    import ccxt

    from bot.feeds.settings import ccxt_exchange_ids

    assert ccxt_exchange_ids() == sorted(ccxt.exchanges)


def test_a_symbol_on_a_composite_feed_without_its_index_is_a_config_error():
    # check-config said "Config OK"; every poll then failed: "feed alts has no index 'ALTS' in its settings".
    text = BASE.replace('feeds: {history: {kind: replay, path: "."}}',
                        'feeds: {history: {kind: replay, path: "."}, alts: {kind: composite}}') \
        .replace("rules:\n", "  - {id: ALTS, feed: alts, asset_class: composite}\nrules:\n")
    with pytest.raises(ConfigError) as refused:
        parse_config(text, "config.yaml", env={})
    assert refused.value.problems == [
        "symbols[1].feed: composite feed 'alts' has no index 'ALTS' (its indexes: none; define "
        "feeds.alts.indexes.ALTS.members) (config.yaml:4)"]


@pytest.mark.parametrize("feed, every, problem", [
    ("{kind: yahoo, every_seconds: 0.0001}", "",
     "feeds.f.every_seconds: 0.0001 s is too often: a yahoo feed is polled at most once a second (config.yaml:1)"),
    ("{kind: exchange, exchange: kraken, every_seconds: 0.5}", "",
     "feeds.f.every_seconds: 0.5 s is too often: an exchange feed is polled at most once a second (config.yaml:1)"),
    ("{kind: replay, path: '.', every_seconds: 0.001}", "",
     "feeds.f.every_seconds: 0.001 s is too often: a replay feed steps at most 100 days a second (config.yaml:1)"),
    ("{kind: replay, path: '.'}", "schedule: {deliver_every_seconds: 0.0001}\n",
     "schedule.deliver_every_seconds: 0.0001 s is too often: the outbox is drained at most 20 times a second "
     "(config.yaml:6)"),
])
def test_a_poll_interval_too_short_for_any_use_is_refused(feed, every, problem):
    # 0.0001 was taken: a Yahoo feed polled 10,000 times a second (Yahoo answers 429 and bans the address).
    text = (f"feeds: {{f: {feed}}}\nsymbols:\n  - {{id: X, feed: f}}\nrules:\n  - {{id: r, kind: new_ath, "
            "symbols: [X]}\n")
    with pytest.raises(ConfigError) as refused:
        parse_config(text + every, "config.yaml", env={})
    assert refused.value.problems == [problem]


def test_the_shortest_intervals_tests_and_rehearsals_use_are_taken():
    config = parse_config("feeds: {f: {kind: replay, path: '.', every_seconds: 0.05}, "
                          "y: {kind: yahoo, every_seconds: 1}}\nsymbols: [{id: X, feed: f}]\n"
                          "rules: [{id: r, kind: new_ath, symbols: [X]}]\nschedule: {deliver_every_seconds: 0.05}\n",
                          "config.yaml", env={})
    assert (config.feeds["f"].every_seconds, config.feeds["y"].every_seconds) == (0.05, 1.0)
    assert config.schedule.deliver_every_seconds == 0.05
