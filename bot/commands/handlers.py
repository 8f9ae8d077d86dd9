"""One short handler per chat command: parse the arguments, call the store or a domain function, return a Reply."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from alerts.durations import parse_duration
from alerts.errors import RiskonError
from alerts.messages import format_price
from bot.commands import status as view
from bot.commands.specs import (
    COMMANDS,
    MAX_ALERTS_SHOWN,
    MAX_MUTE,
    SPECS,
    CommandContext,
    Reply,
    UsageError,
    place,
)
from bot.seams import CommandRuntime
from storage.db import Subscription

if TYPE_CHECKING:
    from bot.config import Config, SymbolConfig


def is_admin(runtime: CommandRuntime, ctx: CommandContext) -> bool:
    """Say whether the user is one of riskon's admins (config `admins`: "123" or "telegram:123")."""
    admins = {str(a) for a in runtime.config.admins}
    return bool(ctx.user_id) and (ctx.user_id in admins or f"{ctx.channel}:{ctx.user_id}" in admins)


# --- handlers ----------------------------------------------------------------------------------

async def greet(runtime: CommandRuntime, ctx: CommandContext, args: list[str]) -> Reply:
    """Say hello and how to start receiving alerts."""
    where = place(ctx)
    subscription = _subscription(runtime, ctx)
    state = ("You are subscribed here." if subscription and subscription.active
             else f"Send /subscribe to get every alert in {where}, or /subscribe BTC for one symbol.")
    return Reply(
        "riskon watches small caps and crypto and alerts on new all-time highs, resistance flips, "
        f"fund outflows and crypto follow-through.\n{state}\n/status shows the markets now; /help lists every command."
    )


async def list_commands(runtime: CommandRuntime, ctx: CommandContext, args: list[str]) -> Reply:
    """List every command with its usage line."""
    admin = is_admin(runtime, ctx)
    lines = [f"{spec.usage_on(ctx.channel)} — {spec.description}" for spec in COMMANDS
             if (admin or not spec.admin_only) and ctx.channel in spec.platforms]
    return Reply("\n".join(lines))


async def show_status(runtime: CommandRuntime, ctx: CommandContext, args: list[str]) -> Reply:
    """Show one symbol in detail, or every symbol in a line each, then the bot's health."""
    if len(args) > 1:
        raise UsageError("Give at most one symbol.")
    config, now = runtime.config, runtime.now()
    if args:
        symbol = _find_symbol(config, args[0])
        if symbol is None:
            raise UsageError(f"Unknown symbol '{args[0]}'. Known: {', '.join(s.id for s in config.symbols)}.")
        return Reply("\n".join(view.symbol_detail(runtime, symbol, now) + [""] + view.health_summary(runtime, now)))
    if not config.symbols:
        return Reply("No symbols are configured.\n\n" + "\n".join(view.health_summary(runtime, now)))
    lines = [view.symbol_line(runtime, symbol, now) for symbol in config.symbols]
    hint = ["", "/status SYMBOL for levels, flows and correlations."]
    return Reply("\n".join(lines + hint + view.health_summary(runtime, now)))


async def subscribe(runtime: CommandRuntime, ctx: CommandContext, args: list[str]) -> Reply:
    """Subscribe this chat (or topic) to every alert, or add rules/symbols to its filters."""
    rules, symbols = _parse_filters(runtime.config, args)
    current = _subscription(runtime, ctx)
    if args and current is not None and current.active and (current.rules or current.symbols):
        rules, symbols = sorted(set(current.rules) | set(rules)), sorted(set(current.symbols) | set(symbols))
    now = runtime.now()
    subscription = await runtime.write(lambda store: store.subscribe(ctx.channel, ctx.chat_id, ctx.thread_id, rules,
                                                                     symbols, now=now))
    return Reply(f"Subscribed {_here(ctx)}: {_describe_filters(subscription)}.")


async def unsubscribe(runtime: CommandRuntime, ctx: CommandContext, args: list[str]) -> Reply:
    """Unsubscribe this chat entirely, or drop some rules/symbols from its filters."""
    current = _subscription(runtime, ctx)
    if current is None or not current.active:
        return Reply(f"Nothing to stop: {_here(ctx)} is not subscribed.")
    if not args or [a.lower() for a in args] == ["all"]:
        await runtime.write(lambda store: store.deactivate_subscription(current.id, "unsubscribed"))
        return Reply(f"Unsubscribed {_here(ctx)}. /subscribe to start again.")
    config = runtime.config
    # A name the config no longer has (a renamed rule) can still be dropped from the filters that hold it.
    stale = {name.lower(): name for name in _stale_filters(config, current)}
    named_stale = {stale[a.strip().lower()] for a in args if a.strip().lower() in stale}
    drop_rules, drop_symbols = _parse_filters(config, [a for a in args if a.strip().lower() not in stale])
    # A rule kind (new_ath) stands for every rule of that kind.
    drop_rules = sorted(set(drop_rules) | {r.id for r in config.rules if r.kind in drop_rules}
                        | (named_stale & set(current.rules)))
    drop_symbols = sorted(set(drop_symbols) | (named_stale & set(current.symbols)))
    # An unfiltered subscription means "everything": spell everything out so some of it can be removed.
    rules = set(current.rules) or ({r.id for r in config.rules} if drop_rules else set())
    symbols = set(current.symbols) or ({s.id for s in config.symbols} if drop_symbols else set())
    rules, symbols = rules - set(drop_rules), symbols - set(drop_symbols)
    if (drop_rules and not rules) or (drop_symbols and not symbols):
        await runtime.write(lambda store: store.deactivate_subscription(current.id, "unsubscribed"))
        return Reply(f"Nothing left to receive, so {_here(ctx)} is unsubscribed. /subscribe to start again.")
    now = runtime.now()
    subscription = await runtime.write(lambda store: store.subscribe(ctx.channel, ctx.chat_id, ctx.thread_id,
                                                                     sorted(rules), sorted(symbols), now=now))
    return Reply(f"Updated {_here(ctx)}: {_describe_filters(subscription)}.")


async def list_subscription(runtime: CommandRuntime, ctx: CommandContext, args: list[str]) -> Reply:
    """Show this chat's subscription and the mutes in force."""
    current = _subscription(runtime, ctx)
    if current is None or not current.active:
        return Reply(f"{_here(ctx).capitalize()} is not subscribed. /subscribe to get alerts.")
    lines = [f"Subscribed {_here(ctx)}: {_describe_filters(current)}."]
    stale = _stale_filters(runtime.config, current)
    if stale:
        lines.append(f"Not in riskon's config any more: {', '.join(stale)}; no alert matches "
                     f"{'it' if len(stale) == 1 else 'them'}. /unsubscribe {stale[0]} drops it.")
    for mute in runtime.store.mutes(current.id, runtime.now()):
        what = " ".join(x for x in (mute.rule_id, mute.symbol) if x) or "everything"
        lines.append(f"Muted: {what} until {mute.until:%Y-%m-%d %H:%M} UTC")
    return Reply("\n".join(lines))


async def list_alerts(runtime: CommandRuntime, ctx: CommandContext, args: list[str]) -> Reply:
    """Show the most recent alerts, newest first."""
    if len(args) > 1 or (args and not re.fullmatch(r"-?[0-9]+", args[0])):  # ASCII digits: "²".isdigit()
        raise UsageError("N must be a whole number.")
    count = int(args[0]) if args else 5
    if not 1 <= count <= MAX_ALERTS_SHOWN:
        raise UsageError(f"N must be between 1 and {MAX_ALERTS_SHOWN}.")
    alerts = runtime.store.recent_alerts(count)
    if not alerts:
        return Reply("No alerts yet.")
    return Reply("\n\n".join(a.text for a in alerts))


async def describe_rules(runtime: CommandRuntime, ctx: CommandContext, args: list[str]) -> Reply:
    """Say in words what every enabled rule watches."""
    lines = []
    for rule, rule_config in runtime.config.build_rules():
        lines.append(f"• {rule_config.id}: {rule.describe(rule_config.symbols)}")
    return Reply("\n".join(lines) if lines else "No rules are enabled.")


async def mute(runtime: CommandRuntime, ctx: CommandContext, args: list[str]) -> Reply:
    """Mute this chat's alerts for a while, for everything or one rule or symbol."""
    if not 1 <= len(args) <= 2:
        raise UsageError("Give a duration, and optionally one rule or symbol.")
    seconds = parse_duration(args[0])
    if seconds is None or seconds <= 0:
        raise UsageError(f"'{args[0]}' is not a duration like 30m, 6h or 2d.")
    if seconds > MAX_MUTE.total_seconds():
        raise UsageError("A mute lasts at most 365d; /unsubscribe to stop for good.")
    rule_id: str | None = None
    symbol: str | None = None
    if len(args) == 2:
        rules, symbols = _parse_filters(runtime.config, args[1:])
        rule_id, symbol = next(iter(rules), None), next(iter(symbols), None)
    current = _subscription(runtime, ctx)
    if current is None or not current.active:
        return Reply(f"{_here(ctx).capitalize()} is not subscribed, so there is nothing to mute.")
    until = runtime.now() + timedelta(seconds=seconds)
    await runtime.write(lambda store: store.mute(current.id, until, rule_id=rule_id, symbol=symbol))
    return Reply(f"Muted {rule_id or symbol or 'every alert'} in {_here(ctx)} until {until:%Y-%m-%d %H:%M} UTC. "
                 "/unmute to lift.")


async def unmute(runtime: CommandRuntime, ctx: CommandContext, args: list[str]) -> Reply:
    """Lift every mute of this chat."""
    if args:
        raise UsageError("/unmute takes no arguments.")
    current = _subscription(runtime, ctx)
    lifted = await runtime.write(lambda store: store.unmute(current.id)) if current is not None else 0
    return Reply(f"Lifted {lifted} mute{'s' if lifted != 1 else ''} in {_here(ctx)}." if lifted else "Nothing was muted.")


async def draw_chart(runtime: CommandRuntime, ctx: CommandContext, args: list[str]) -> Reply:
    """Draw a symbol's last year: price, all-time high, tracked levels, its alerts and flows."""
    if len(args) != 1:
        raise UsageError("Give one symbol.")
    symbol = _find_symbol(runtime.config, args[0])
    if symbol is None:
        raise UsageError(f"Unknown symbol '{args[0]}'. Known: {', '.join(s.id for s in runtime.config.symbols)}.")
    from alerts import charts  # matplotlib loads on the first chart, not with every command

    store, now = runtime.store, runtime.now()
    bars = store.load_bars(symbol.id)
    if not bars:
        return Reply(f"No bars of {symbol.id} stored yet.")
    events = [a.event() for a in store.recent_alerts(200) if a.symbol == symbol.id]
    if events:
        # Drawing takes a moment of CPU: off the event loop, so alerts and other commands keep flowing.
        png = await asyncio.to_thread(
            charts.alert_chart, events[0], bars, events=events[1:], flows=view.last_year_flows(store, symbol.id, now) or (),
            levels=view.tracked_levels(runtime, symbol.id), title=f"{symbol.id}: the last year")
    else:
        recent = bars[-365:]
        png = await asyncio.to_thread(
            charts.signals_chart, symbol.id, [b.time.date() for b in recent], [b.close for b in recent], [],
            title=f"{symbol.id}: the last year (no alerts yet)")
    if png is None:
        return Reply(f"Too few bars of {symbol.id} stored to draw a chart yet.")
    return Reply(f"{symbol.id}: last close {format_price(bars[-1].close)} on {bars[-1].time:%Y-%m-%d}", png)


async def pause(runtime: CommandRuntime, ctx: CommandContext, args: list[str]) -> Reply:
    """Stop sending alerts everywhere (they are still recorded)."""
    await runtime.set_paused(True)
    return Reply("Paused: alerts are recorded but not sent. /resume to send again.")


async def resume(runtime: CommandRuntime, ctx: CommandContext, args: list[str]) -> Reply:
    """Send alerts again."""
    await runtime.set_paused(False)
    return Reply("Resumed: alerts are sent again.")


async def reload(runtime: CommandRuntime, ctx: CommandContext, args: list[str]) -> Reply:
    """Re-read config.yaml; keep rule state, subscriptions and the outbox."""
    try:
        changes = await runtime.reload()
    except RiskonError as exc:
        return Reply(f"Config not reloaded, the running one stays:\n{exc}")
    config = runtime.config
    summary = f"Reloaded: {len(config.symbols)} symbols, {len(config.rules)} rules, {len(config.feeds)} feeds."
    return Reply("\n".join([summary, *(changes or [])]))


async def report_health(runtime: CommandRuntime, ctx: CommandContext, args: list[str]) -> Reply:
    """Show feeds, outbox and pause state in detail."""
    now = runtime.now()
    started = runtime.started_at
    lines = [f"Up since {started:%Y-%m-%d %H:%M} UTC ({view.age(now - started)})"]
    lines += view.health_summary(runtime, now)
    counts = runtime.store.outbox_counts()
    lines.append("Outbox: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    lines.append(f"Alerts recorded: {runtime.store.alert_count()}")
    for polls in runtime.store.feed_health():
        if polls.last_error:
            lines.append(f"Last error of {polls.feed}: {polls.last_error[:200]}")
    return Reply("\n".join(lines))


async def take_fragility_snapshot(runtime: CommandRuntime, ctx: CommandContext, args: list[str]) -> Reply:
    """Ask the fragility feed for a snapshot of one fund (or every fund) now, whatever its schedule says."""
    from bot.fragility_report import request_snapshot

    if len(args) > 1:
        raise UsageError("Give at most one fund, e.g. IWM.")
    try:
        return Reply(request_snapshot(runtime, args[0] if args else None))
    except ValueError as exc:
        raise UsageError(str(exc)) from None


HANDLERS: dict[str, Callable[[CommandRuntime, CommandContext, list[str]], Awaitable[Reply]]] = {
    "start": greet,
    "help": list_commands,
    "status": show_status,
    "subscribe": subscribe,
    "unsubscribe": unsubscribe,
    "list": list_subscription,
    "alerts": list_alerts,
    "rules": describe_rules,
    "mute": mute,
    "unmute": unmute,
    "chart": draw_chart,
    "pause": pause,
    "resume": resume,
    "reload": reload,
    "health": report_health,
    "fragility": take_fragility_snapshot,
}
assert set(HANDLERS) == set(SPECS), "every command has exactly one handler"


# --- helpers ------------------------------------------------------------------------------------

def _subscription(runtime: CommandRuntime, ctx: CommandContext) -> Subscription | None:
    return runtime.store.subscription(ctx.channel, ctx.chat_id, ctx.thread_id)


def _here(ctx: CommandContext) -> str:
    return place(ctx)


def _find_symbol(config: Config, text: str) -> SymbolConfig | None:
    """Find a configured symbol by id, ignoring case and a leading ^ (rut finds ^RUT)."""
    wanted = text.strip().lower()
    for symbol in config.symbols:
        if wanted in (symbol.id.lower(), symbol.id.lower().lstrip("^")):
            return symbol
    return None


def _parse_filters(config: Config, args: Sequence[str]) -> tuple[list[str], list[str]]:
    """Split arguments into rule ids (or kinds) and symbol ids; raise UsageError naming an unknown one."""
    rule_ids = {r.id.lower(): r.id for r in config.rules}
    kinds = {r.kind.lower(): r.kind for r in config.rules}
    rules, symbols = [], []
    for arg in args:
        key = arg.strip().lower()
        if key in rule_ids:
            rules.append(rule_ids[key])
        elif key in kinds:
            rules.append(kinds[key])
        elif (symbol := _find_symbol(config, arg)) is not None:
            symbols.append(symbol.id)
        else:
            known = ", ".join([r.id for r in config.rules] + [s.id for s in config.symbols])
            raise UsageError(f"'{arg[:40]}' is neither a rule nor a symbol. Known: {known}.")
    return sorted(set(rules)), sorted(set(symbols))


def _stale_filters(config: Config, subscription: Subscription) -> list[str]:
    """Return the names in a subscription's filters that the config no longer has (renamed or removed)."""
    rules = {r.id for r in config.rules} | {r.kind for r in config.rules}
    symbols = {s.id for s in config.symbols}
    return [r for r in subscription.rules if r not in rules] + [s for s in subscription.symbols if s not in symbols]


def _describe_filters(subscription: Subscription) -> str:
    if not subscription.rules and not subscription.symbols:
        return "every alert"
    parts = []
    if subscription.rules:
        parts.append("rules " + ", ".join(subscription.rules))
    if subscription.symbols:
        parts.append("symbols " + ", ".join(subscription.symbols))
    return " on ".join(parts) if len(parts) == 2 else parts[0]
