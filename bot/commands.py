"""Chat commands, written once: parse the arguments, read or change state through the Store, return a Reply.

Telegram and Discord render the same replies. An adapter builds a `CommandContext` for the chat and the
user, calls `dispatch`, and sends `Reply.text` (plain text; the adapter escapes it) and `Reply.image_png`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Awaitable, Callable, Sequence

from alerts import status as figures
from alerts.events import AlertEvent
from alerts.messages import format_pct, format_price, format_usd

log = logging.getLogger(__name__)

MAX_ALERTS_SHOWN = 50
MAX_ARGS, MAX_ARG_LENGTH = 40, 64  # more than any real command needs; keeps replies from echoing a flood
MAX_MUTE = timedelta(days=365)
COMMANDS_PER_MINUTE, COMMAND_BURST = 30.0, 30.0  # per user: a burst of 30, then one every 2 s


@dataclass(frozen=True)
class CommandSpec:
    """One chat command: its name, usage line, what it does, and who may run it."""

    name: str
    usage: str
    description: str
    admin_only: bool = False  # riskon's own admins (config `admins`), in any chat
    changes_subscriptions: bool = False  # private chat: its owner; group: the group's admins


COMMANDS: tuple[CommandSpec, ...] = (
    CommandSpec("start", "/start", "Say hello and how to get alerts"),
    CommandSpec("help", "/help", "List the commands"),
    CommandSpec("status", "/status [SYMBOL]", "Prices, all-time highs, levels, flows, data freshness, bot health"),
    CommandSpec("subscribe", "/subscribe [RULE|SYMBOL ...]", "Get alerts here (all, or only these rules/symbols)",
                changes_subscriptions=True),
    CommandSpec("unsubscribe", "/unsubscribe [RULE|SYMBOL ...|all]", "Stop alerts here (all, or these rules/symbols)",
                changes_subscriptions=True),
    CommandSpec("list", "/list", "Show this chat's subscription and mutes"),
    CommandSpec("alerts", "/alerts [N]", "Show the N most recent alerts (default 5)"),
    CommandSpec("rules", "/rules", "Say what is watched, in words"),
    CommandSpec("mute", "/mute DURATION [RULE|SYMBOL]", "Silence alerts here for a while, e.g. /mute 6h BTC",
                changes_subscriptions=True),
    CommandSpec("unmute", "/unmute", "Lift every mute of this chat", changes_subscriptions=True),
    CommandSpec("chart", "/chart SYMBOL", "Draw a chart of a symbol"),
    CommandSpec("pause", "/pause", "Stop sending alerts everywhere (admin)", admin_only=True),
    CommandSpec("resume", "/resume", "Send alerts again (admin)", admin_only=True),
    CommandSpec("reload", "/reload", "Re-read config.yaml, keeping state (admin)", admin_only=True),
    CommandSpec("health", "/health", "Feeds, outbox and uptime in detail (admin)", admin_only=True),
)
SPECS: dict[str, CommandSpec] = {spec.name: spec for spec in COMMANDS}


async def _always() -> bool:
    return True


@dataclass(frozen=True)
class CommandContext:
    """Who typed a command, and where: the chat, the forum topic or thread, and the user."""

    channel: str  # the notifier name subscriptions are stored under: "telegram", "discord"
    chat_id: str
    thread_id: str = ""  # a forum topic (Telegram message_thread_id) or thread; "" for the chat itself
    user_id: str = ""
    is_private: bool = False
    # Ask the chat service whether this user may change this chat's subscriptions (a group admin).
    may_manage: Callable[[], Awaitable[bool]] = field(default=_always, compare=False)
    # Who may change subscriptions, in the chat service's words (for the refusal).
    managers: str = "this group's admins"


@dataclass(frozen=True)
class Reply:
    """What a command answers: plain text, and an optional PNG image."""

    text: str
    image_png: bytes | None = None


class UsageError(Exception):
    """Signal bad arguments; the reply names what is wrong and gives the usage line."""


class CommandRateLimit:
    """Let each user run a burst of commands, then a steady number a minute (a token bucket per user)."""

    def __init__(self, per_minute: float = COMMANDS_PER_MINUTE, burst: float = COMMAND_BURST,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.clock = per_minute / 60.0, burst, clock
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}  # user -> (tokens, when counted)

    def wait_needed(self, ctx: CommandContext) -> float:
        """Take one command from the user's bucket; return 0 when it may run, else seconds until one may."""
        now = self.clock()
        key = (ctx.channel, ctx.user_id or f"chat:{ctx.chat_id}")  # anonymous senders share their chat's bucket
        tokens, then = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - then) * self.rate)
        if tokens < 1:
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / self.rate
        self._buckets[key] = (tokens - 1, now)
        if len(self._buckets) > 10_000:  # forget users whose buckets have refilled: memory stays bounded
            full = now - self.burst / self.rate
            self._buckets = {k: v for k, v in self._buckets.items() if v[1] > full}
        return 0.0


async def dispatch(runtime: Any, ctx: CommandContext, name: str, args: Sequence[str]) -> Reply:
    """Run one command for one user in one chat; never raise, always answer."""
    limit = getattr(runtime, "command_limit", None)
    wait = limit.wait_needed(ctx) if limit is not None else 0.0
    if wait > 0:
        return Reply(f"Slow down: at most {limit.rate * 60:g} commands a minute each. Try again in {math.ceil(wait)} s.")
    name = name.lstrip("/").split("@", 1)[0].lower()
    spec = SPECS.get(name)
    if spec is None:
        return Reply(f"Unknown command /{name[:32]}. Send /help for the list.")
    if len(args) > MAX_ARGS or any(len(arg) > MAX_ARG_LENGTH for arg in args):
        return Reply(f"Too many or too long arguments.\nUsage: {spec.usage}")
    if spec.admin_only and not is_admin(runtime, ctx):
        return Reply(f"/{name} is for riskon's admins only.")
    if spec.changes_subscriptions and not ctx.is_private:
        try:
            allowed = await ctx.may_manage()
        except Exception:  # the chat service could not say: refuse, never guess in favour
            log.warning("could not check whether user %s may manage chat %s", ctx.user_id, ctx.chat_id, exc_info=True)
            return Reply("Could not check your rights in this chat right now; try again in a minute.")
        if not allowed:
            return Reply(f"Only {ctx.managers} can use /{name} here. Everyone can use /status.")
    try:
        return await HANDLERS[name](runtime, ctx, list(args))
    except UsageError as exc:
        return Reply(f"{exc}\nUsage: {spec.usage}")
    except Exception:
        log.exception("/%s failed in %s chat %s", name, ctx.channel, ctx.chat_id)
        return Reply(f"/{name} failed on riskon's side; the error is logged.")


def is_admin(runtime: Any, ctx: CommandContext) -> bool:
    """Say whether the user is one of riskon's admins (config `admins`: "123" or "telegram:123")."""
    admins = {str(a) for a in getattr(runtime.config, "admins", ())}
    return bool(ctx.user_id) and (ctx.user_id in admins or f"{ctx.channel}:{ctx.user_id}" in admins)


# --- handlers ----------------------------------------------------------------------------------

async def greet(runtime: Any, ctx: CommandContext, args: list[str]) -> Reply:
    """Say hello and how to start receiving alerts."""
    where = "this chat" if ctx.is_private else ("this topic" if ctx.thread_id else "this group")
    subscription = _subscription(runtime, ctx)
    state = ("You are subscribed here." if subscription and subscription.active
             else f"Send /subscribe to get every alert in {where}, or /subscribe BTC for one symbol.")
    return Reply(
        "riskon watches small caps and crypto and alerts on new all-time highs, resistance flips, "
        f"fund outflows and crypto follow-through.\n{state}\n/status shows the markets now; /help lists every command."
    )


async def list_commands(runtime: Any, ctx: CommandContext, args: list[str]) -> Reply:
    """List every command with its usage line."""
    admin = is_admin(runtime, ctx)
    lines = [f"{spec.usage} — {spec.description}" for spec in COMMANDS if admin or not spec.admin_only]
    return Reply("\n".join(lines))


async def show_status(runtime: Any, ctx: CommandContext, args: list[str]) -> Reply:
    """Show one symbol in detail, or every symbol in a line each, then the bot's health."""
    if len(args) > 1:
        raise UsageError("Give at most one symbol.")
    config, now = runtime.config, runtime.now()
    if args:
        symbol = _find_symbol(config, args[0])
        if symbol is None:
            raise UsageError(f"Unknown symbol '{args[0]}'. Known: {', '.join(s.id for s in config.symbols)}.")
        return Reply("\n".join(_symbol_detail(runtime, symbol, now) + [""] + _health_summary(runtime, now)))
    if not config.symbols:
        return Reply("No symbols are configured.\n\n" + "\n".join(_health_summary(runtime, now)))
    lines = [_symbol_line(runtime, symbol, now) for symbol in config.symbols]
    return Reply("\n".join(lines + ["", "/status SYMBOL for levels, flows and correlations."] + _health_summary(runtime, now)))


async def subscribe(runtime: Any, ctx: CommandContext, args: list[str]) -> Reply:
    """Subscribe this chat (or topic) to every alert, or add rules/symbols to its filters."""
    rules, symbols = _parse_filters(runtime.config, args)
    store = runtime.store
    current = _subscription(runtime, ctx)
    if args and current is not None and current.active and (current.rules or current.symbols):
        rules, symbols = sorted(set(current.rules) | set(rules)), sorted(set(current.symbols) | set(symbols))
    subscription = store.subscribe(ctx.channel, ctx.chat_id, ctx.thread_id, rules, symbols, now=runtime.now())
    return Reply(f"Subscribed {_here(ctx)}: {_describe_filters(subscription)}.")


async def unsubscribe(runtime: Any, ctx: CommandContext, args: list[str]) -> Reply:
    """Unsubscribe this chat entirely, or drop some rules/symbols from its filters."""
    current = _subscription(runtime, ctx)
    if current is None or not current.active:
        return Reply(f"Nothing to stop: {_here(ctx)} is not subscribed.")
    if not args or [a.lower() for a in args] == ["all"]:
        runtime.store.deactivate_subscription(current.id, "unsubscribed")
        return Reply(f"Unsubscribed {_here(ctx)}. /subscribe to start again.")
    config = runtime.config
    drop_rules, drop_symbols = _parse_filters(config, args)
    # A rule kind (new_ath) stands for every rule of that kind.
    drop_rules = sorted(set(drop_rules) | {r.id for r in config.rules if r.kind in drop_rules})
    # An unfiltered subscription means "everything": spell everything out so some of it can be removed.
    rules = set(current.rules) or ({r.id for r in config.rules} if drop_rules else set())
    symbols = set(current.symbols) or ({s.id for s in config.symbols} if drop_symbols else set())
    rules, symbols = rules - set(drop_rules), symbols - set(drop_symbols)
    if (drop_rules and not rules) or (drop_symbols and not symbols):
        runtime.store.deactivate_subscription(current.id, "unsubscribed")
        return Reply(f"Nothing left to receive, so {_here(ctx)} is unsubscribed. /subscribe to start again.")
    subscription = runtime.store.subscribe(ctx.channel, ctx.chat_id, ctx.thread_id, sorted(rules), sorted(symbols),
                                           now=runtime.now())
    return Reply(f"Updated {_here(ctx)}: {_describe_filters(subscription)}.")


async def list_subscription(runtime: Any, ctx: CommandContext, args: list[str]) -> Reply:
    """Show this chat's subscription and the mutes in force."""
    current = _subscription(runtime, ctx)
    if current is None or not current.active:
        return Reply(f"{_here(ctx).capitalize()} is not subscribed. /subscribe to get alerts.")
    lines = [f"Subscribed {_here(ctx)}: {_describe_filters(current)}."]
    for mute in runtime.store.mutes(current.id, runtime.now()):
        what = " ".join(x for x in (mute["rule_id"], mute["symbol"]) if x) or "everything"
        lines.append(f"Muted: {what} until {mute['until']:%Y-%m-%d %H:%M} UTC")
    return Reply("\n".join(lines))


async def list_alerts(runtime: Any, ctx: CommandContext, args: list[str]) -> Reply:
    """Show the most recent alerts, newest first."""
    if len(args) > 1 or (args and not (args[0].isascii() and args[0].isdigit())):  # "²".isdigit(), int("²") fails
        raise UsageError("N must be a whole number.")
    count = int(args[0]) if args else 5
    if not 1 <= count <= MAX_ALERTS_SHOWN:
        raise UsageError(f"N must be between 1 and {MAX_ALERTS_SHOWN}.")
    alerts = runtime.store.recent_alerts(count)
    if not alerts:
        return Reply("No alerts yet.")
    return Reply("\n\n".join(a["text"] for a in alerts))


async def describe_rules(runtime: Any, ctx: CommandContext, args: list[str]) -> Reply:
    """Say in words what every enabled rule watches."""
    lines = []
    for rule, rule_config in runtime.config.build_rules():
        lines.append(f"• {rule_config.id}: {rule.describe(rule_config.symbols)}")
    return Reply("\n".join(lines) if lines else "No rules are enabled.")


async def mute(runtime: Any, ctx: CommandContext, args: list[str]) -> Reply:
    """Mute this chat's alerts for a while, for everything or one rule or symbol."""
    from bot.config import parse_duration

    if not 1 <= len(args) <= 2:
        raise UsageError("Give a duration, and optionally one rule or symbol.")
    seconds = parse_duration(args[0])
    if seconds is None or seconds <= 0:
        raise UsageError(f"'{args[0]}' is not a duration like 30m, 6h or 2d.")
    if seconds > MAX_MUTE.total_seconds():
        raise UsageError("A mute lasts at most 365d; /unsubscribe to stop for good.")
    rule_id = symbol = None
    if len(args) == 2:
        rules, symbols = _parse_filters(runtime.config, args[1:])
        rule_id, symbol = (rules or [None])[0], (symbols or [None])[0]
    current = _subscription(runtime, ctx)
    if current is None or not current.active:
        return Reply(f"{_here(ctx).capitalize()} is not subscribed, so there is nothing to mute.")
    until = runtime.now() + timedelta(seconds=seconds)
    runtime.store.mute(current.id, until, rule_id=rule_id, symbol=symbol)
    return Reply(f"Muted {rule_id or symbol or 'every alert'} {_here(ctx)} until {until:%Y-%m-%d %H:%M} UTC. /unmute to lift.")


async def unmute(runtime: Any, ctx: CommandContext, args: list[str]) -> Reply:
    """Lift every mute of this chat."""
    if args:
        raise UsageError("/unmute takes no arguments.")
    current = _subscription(runtime, ctx)
    lifted = runtime.store.unmute(current.id) if current is not None else 0
    return Reply(f"Lifted {lifted} mute{'s' if lifted != 1 else ''} {_here(ctx)}." if lifted else "Nothing was muted.")


async def draw_chart(runtime: Any, ctx: CommandContext, args: list[str]) -> Reply:
    """Draw a symbol's last year: price, all-time high, tracked levels, its alerts and flows."""
    if len(args) != 1:
        raise UsageError("Give one symbol.")
    symbol = _find_symbol(runtime.config, args[0])
    if symbol is None:
        raise UsageError(f"Unknown symbol '{args[0]}'. Known: {', '.join(s.id for s in runtime.config.symbols)}.")
    try:
        from alerts import charts
    except ImportError:
        return Reply("Charts arrive with the backtest issue; /status shows the figures meanwhile.")
    store, now = runtime.store, runtime.now()
    bars = store.load_bars(symbol.id)
    if not bars:
        return Reply(f"No bars of {symbol.id} stored yet.")
    alerts = [a for a in store.recent_alerts(200) if a["symbol"] == symbol.id]
    if alerts:
        events = [AlertEvent(a["rule_id"], a["kind"], a["symbol"], datetime.fromisoformat(a["bar_time"]), a["values"])
                  for a in alerts]
        # Drawing takes a moment of CPU: off the event loop, so alerts and other commands keep flowing.
        png = await asyncio.to_thread(
            charts.alert_chart, events[0], bars, events=events[1:], flows=_flows(store, symbol.id, now) or (),
            levels=_tracked_levels(runtime, symbol.id), title=f"{symbol.id}: the last year")
    else:
        recent = bars[-365:]
        png = await asyncio.to_thread(
            charts.signals_chart, symbol.id, [b.time.date() for b in recent], [b.close for b in recent], [],
            title=f"{symbol.id}: the last year (no alerts yet)")
    if png is None:
        return Reply(f"Too few bars of {symbol.id} stored to draw a chart yet.")
    return Reply(f"{symbol.id}: last close {format_price(bars[-1].close)} on {bars[-1].time:%Y-%m-%d}", png)


async def pause(runtime: Any, ctx: CommandContext, args: list[str]) -> Reply:
    """Stop sending alerts everywhere (they are still recorded)."""
    _set_paused(runtime, True)
    return Reply("Paused: alerts are recorded but not sent. /resume to send again.")


async def resume(runtime: Any, ctx: CommandContext, args: list[str]) -> Reply:
    """Send alerts again."""
    _set_paused(runtime, False)
    return Reply("Resumed: alerts are sent again.")


async def reload(runtime: Any, ctx: CommandContext, args: list[str]) -> Reply:
    """Re-read config.yaml; keep rule state, subscriptions and the outbox."""
    from alerts.errors import RiskonError

    try:
        changes = await runtime.reload()
    except RiskonError as exc:
        return Reply(f"Config not reloaded, the running one stays:\n{exc}")
    config = runtime.config
    summary = f"Reloaded: {len(config.symbols)} symbols, {len(config.rules)} rules, {len(config.feeds)} feeds."
    return Reply("\n".join([summary, *(changes or [])]))


async def report_health(runtime: Any, ctx: CommandContext, args: list[str]) -> Reply:
    """Show feeds, outbox and pause state in detail."""
    now = runtime.now()
    started = getattr(runtime, "started_at", None)
    lines = [f"Up since {started:%Y-%m-%d %H:%M} UTC ({_age(now - started)})"] if started else []
    lines += _health_summary(runtime, now)
    counts = runtime.store.outbox_counts()
    lines.append("Outbox: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    lines.append(f"Alerts recorded: {runtime.store.alert_count()}")
    for row in runtime.store.feed_health():
        if row.get("last_error"):
            lines.append(f"Last error of {row['feed']}: {row['last_error'][:200]}")
    return Reply("\n".join(lines))


HANDLERS: dict[str, Callable[[Any, CommandContext, list[str]], Awaitable[Reply]]] = {
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
}
assert set(HANDLERS) == set(SPECS), "every command has exactly one handler"


# --- helpers ------------------------------------------------------------------------------------

def _subscription(runtime: Any, ctx: CommandContext) -> Any:
    return runtime.store.subscription(ctx.channel, ctx.chat_id, ctx.thread_id)


def _here(ctx: CommandContext) -> str:
    if ctx.is_private:
        return "this chat"
    return "this topic" if ctx.thread_id else "this group"


def _find_symbol(config: Any, text: str) -> Any:
    """Find a configured symbol by id, ignoring case and a leading ^ (rut finds ^RUT)."""
    wanted = text.strip().lower()
    for symbol in config.symbols:
        if wanted in (symbol.id.lower(), symbol.id.lower().lstrip("^")):
            return symbol
    return None


def _parse_filters(config: Any, args: Sequence[str]) -> tuple[list[str], list[str]]:
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


def _describe_filters(subscription: Any) -> str:
    if not subscription.rules and not subscription.symbols:
        return "every alert"
    parts = []
    if subscription.rules:
        parts.append("rules " + ", ".join(subscription.rules))
    if subscription.symbols:
        parts.append("symbols " + ", ".join(subscription.symbols))
    return " on ".join(parts) if len(parts) == 2 else parts[0]


def _set_paused(runtime: Any, paused: bool) -> None:
    runtime.set_paused(paused)


def _tracked_levels(runtime: Any, symbol_id: str) -> list[float]:
    """Return the price levels the symbol's level-watching rules track."""
    levels = []
    for rule in runtime.config.rules:
        if symbol_id in rule.symbols and rule.kind != "new_ath":
            state, _ = runtime.store.rule_state(rule.id, symbol_id)
            levels.extend(level for level, _ in figures.tracked_levels(state))
    return levels


def _leader(config: Any) -> Any:
    """Return the small-cap leader crypto is compared with: ^RUT if configured, else the first index or ETF."""
    for symbol in config.symbols:
        if symbol.id.upper() in ("^RUT", "RUT"):
            return symbol
    return next((s for s in config.symbols if s.asset_class in ("index", "etf")), None)


def _ath(runtime: Any, symbol_id: str) -> tuple[float, datetime, str] | None:
    """Return the all-time high a new_ath rule tracks for the symbol (or the cached bars' best close)."""
    for rule in runtime.config.rules:
        if rule.kind == "new_ath" and symbol_id in rule.symbols:
            state, _ = runtime.store.rule_state(rule.id, symbol_id)
            if state and state.get("ath") is not None:
                return float(state["ath"]), datetime.fromisoformat(state["ath_time"]), ""
    best = figures.highest_close(runtime.store.load_bars(symbol_id))
    return (best[0], best[1], " (highest stored close)") if best else None


def _price_bits(runtime: Any, symbol: Any, now: datetime) -> list[str]:
    bars = runtime.store.recent_bars(symbol.id, 2)
    change = figures.day_change(bars)
    if change is None:
        return ["no data yet"]
    day = f" ({format_pct(change.change_pct)} on the day)" if change.change_pct is not None else ""
    bits = [f"{format_price(change.price)}{day}"]
    ath = _ath(runtime, symbol.id)
    if ath is not None:
        high, when, note = ath
        distance = format_pct(figures.distance_from_high(change.price, high))
        bits.append(f"ATH {format_price(high)} on {when:%Y-%m-%d}{note}, {distance} from it")
    return bits


def _staleness(runtime: Any, symbol: Any, now: datetime) -> str | None:
    """Say why a symbol's data is stale (its feed's own mark, or a last bar too old), or None when current."""
    feed = getattr(runtime, "feeds", {}).get(symbol.feed)
    marks = {}
    if feed is not None and callable(getattr(feed, "stale", None)):
        try:
            marks = feed.stale(now)
        except Exception:  # a feed's bookkeeping must not break /status
            log.warning("feed %s could not say which symbols are stale", symbol.feed, exc_info=True)
    mark = marks.get(symbol.id)
    if mark is not None:
        return f"no good update since {mark.since:%Y-%m-%d %H:%M} UTC: {mark.why}"
    last = runtime.store.last_bar_time(symbol.id)
    if last is not None and figures.is_stale(last, now, symbol.asset_class):
        return f"last bar {_age(now - last)} old"
    return None


def _symbol_line(runtime: Any, symbol: Any, now: datetime) -> str:
    stale = _staleness(runtime, symbol, now)
    return ("⚠️ STALE " if stale else "") + f"{symbol.id}: " + "; ".join(_price_bits(runtime, symbol, now))


def _symbol_detail(runtime: Any, symbol: Any, now: datetime) -> list[str]:
    store, config = runtime.store, runtime.config
    lines = [f"{symbol.id} ({symbol.asset_class})", *_price_bits(runtime, symbol, now)]
    last = store.last_bar_time(symbol.id)
    stale = _staleness(runtime, symbol, now)
    data = f"Data: last daily bar {last:%Y-%m-%d}" if last is not None else "Data: nothing stored yet"
    lines.append(data + (f" — ⚠️ STALE, {stale}" if stale else ""))
    latest = store.recent_bars(symbol.id, 1)
    for rule in config.rules:
        if symbol.id not in rule.symbols or rule.kind == "new_ath":
            continue
        state, _ = store.rule_state(rule.id, symbol.id)
        for level_line in figures.describe_levels(state, latest[-1].close if latest else None):
            lines.append(f"Level ({rule.id}) {level_line}")
    flows = _flows(store, symbol.id, now)
    if flows is not None:
        for days in (5, 20):
            total = figures.net_flow_total(flows, days, now)
            if total is not None:
                lines.append(f"Net flow, last {days} days: {format_usd(total)}")
    leader = _leader(config)
    if symbol.asset_class in ("crypto", "composite") and leader is not None:  # ALTS: the altcoin composite
        follower_bars = store.load_bars(symbol.id, since=now - timedelta(days=100))
        leader_bars = store.load_bars(leader.id, since=now - timedelta(days=100))
        for days in (30, 90):
            corr = figures.return_correlation(follower_bars, leader_bars, days, now)
            shown = f"{corr:+.2f}" if corr is not None else "not enough shared days"
            lines.append(f"Correlation with {leader.id}, {days} days: {shown}")
    return lines


def _flows(store: Any, symbol_id: str, now: datetime) -> list[tuple[datetime, float]] | None:
    """Return the fund's daily net flows of the last year, or None when none are stored."""
    flows = store.load_flows(symbol_id, since=now - timedelta(days=366))
    return flows or None


def _health_summary(runtime: Any, now: datetime) -> list[str]:
    store = runtime.store
    lines = ["Bot: PAUSED (alerts recorded, not sent)" if getattr(runtime, "paused", False) else "Bot: running"]
    for row in store.feed_health():
        ok = row.get("last_ok_at")
        when = f"last good poll {_age(now - datetime.fromisoformat(ok))} ago" if ok else "no good poll yet"
        failing = f", {row['failures']} failures in a row" if row.get("failures") else ""
        lines.append(f"Feed {row['feed']}: {when}{failing}")
    counts = store.outbox_counts()
    lines.append(f"Deliveries pending: {counts.get('pending', 0) + counts.get('retrying', 0)}")
    return lines + _degraded(runtime, now)


def _degraded(runtime: Any, now: datetime) -> list[str]:
    """Say what is degraded, one line each (the same reasons /healthz gives), or that all is well."""
    from bot.health import degraded_reasons

    try:
        reasons = degraded_reasons(runtime, now)
    except Exception:  # a partial runtime (tests, start-up) must not break /status
        log.debug("degraded reasons not available", exc_info=True)
        return []
    return ["Degraded:", *(f"• {reason}" for reason in reasons)] if reasons else ["All feeds and channels OK"]


def _age(delta: timedelta) -> str:
    seconds = max(delta.total_seconds(), 0)
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.0f}h"
    return f"{seconds / 86400:.0f}d"
