"""A rule or symbol renamed in config.yaml: chats whose filters name the old one are told, and can drop it."""

from __future__ import annotations

from bot.commands import CommandContext, dispatch
from bot.config import load_config, parse_config
from bot.runtime import Runtime
from storage import Store

CONFIG = """feeds: {replay: {kind: replay, path: "."}}
symbols:
  - {id: "^RUT", feed: replay, csv: RUT}
  - {id: BTC, feed: replay, csv: BTC, asset_class: crypto}
rules:
  - {id: RULE, kind: new_ath, symbols: ["^RUT"]}
  - {id: btc_ath, kind: new_ath, symbols: [BTC]}
"""


async def _owner() -> bool:
    return True


async def test_a_filter_naming_a_renamed_rule_is_shown_and_can_be_dropped():
    store = Store.memory()
    chat = CommandContext("telegram", "111", "", "111", True, _owner)
    before = Runtime(parse_config(CONFIG.replace("RULE", "rut_ath"), "config.yaml", env={}), store, feeds={})
    assert (await dispatch(before, chat, "subscribe", ["rut_ath", "btc_ath"])).text == (
        "Subscribed this chat: rules btc_ath, rut_ath.")
    after = Runtime(parse_config(CONFIG.replace("RULE", "smallcap_ath"), "config.yaml", env={}), store, feeds={})
    # Was "Subscribed this chat: rules btc_ath, rut_ath." alone: rut_ath's alerts had silently stopped.
    assert (await dispatch(after, chat, "list", [])).text == (
        "Subscribed this chat: rules btc_ath, rut_ath.\n"
        "Not in riskon's config any more: rut_ath; no alert matches it. /unsubscribe rut_ath drops it.")
    # Was refused: "'rut_ath' is neither a rule nor a symbol".
    assert (await dispatch(after, chat, "unsubscribe", ["rut_ath"])).text == "Updated this chat: rules btc_ath."
    assert (await dispatch(after, chat, "list", [])).text == "Subscribed this chat: rules btc_ath."
    # Dropping the last name a filter holds unsubscribes, as for a configured one (an empty filter is "everything").
    assert (await dispatch(after, chat, "unsubscribe", ["btc_ath"])).text.startswith("Nothing left to receive")


async def test_a_reload_applies_the_rules_and_says_what_waits_for_a_restart(tmp_path):
    # Was "Reloaded: 3 symbols, ..." with the new symbol in the config but never polled and the new schedule never
    # used: half a config applied, reported as all of it.
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG.replace("RULE", "rut_ath") + 'admins: ["900"]\n')
    runtime = Runtime(load_config(path), Store.memory(), feeds={})
    eth = "  - {id: ETH, feed: replay, csv: ETH, asset_class: crypto}\n"
    path.write_text(CONFIG.replace("RULE", "smallcap_ath").replace("rules:\n", eth + "rules:\n")
                    + 'admins: ["900"]\nschedule: {deliver_every_seconds: 5}\n')
    admin = CommandContext("telegram", "900", "", "900", True, _owner)
    reply = (await dispatch(runtime, admin, "reload", [])).text
    assert reply == ("Reloaded: 2 symbols, 2 rules, 1 feeds.\nrules added: smallcap_ath\nrules removed: rut_ath\n"
                     "changed, applied at the next restart: schedule, symbols (the running ones stay)")
    assert [s.id for s in runtime.config.symbols] == ["^RUT", "BTC"]
    assert runtime.config.schedule.deliver_every_seconds == 2
    assert [r.id for r in runtime.config.rules] == ["smallcap_ath", "btc_ath"]
