"""`riskon send-test`: a clearly-marked sample alert, with its chart, to every subscribed chat; says what happened."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Callable

from alerts.bars import Bar
from alerts.errors import RiskonError
from alerts.events import AlertEvent
from alerts.messages import format_price
from bot.config import Config, escape_hidden
from bot.config.messages import did_you_mean
from bot.notifiers.base import ChatTarget, OutgoingAlert, SendOutcome

if TYPE_CHECKING:  # the runtime loads when a test send runs
    from bot.runtime import Runtime

SAMPLE_RULE = "send_test"
SAMPLE_KIND = "send_test"
SEND_TIMEOUT_SECONDS = 60.0
CHART_DAYS = 180


@dataclass(frozen=True)
class TestSend:
    """What one test message to one chat came to."""

    channel: str
    chat: ChatTarget
    outcome: SendOutcome

    @property
    def ok(self) -> bool:
        """Say whether the message reached the chat."""
        return self.outcome.status == "sent"

    def describe(self) -> str:
        """Word the outcome: sent, rate-limited, forbidden, chat gone or failed, with the service's own words."""
        outcome = self.outcome
        where = self.chat.chat_id + (f" (thread {self.chat.thread_id})" if self.chat.thread_id else "")
        if outcome.status == "sent":
            extra = f" (but {outcome.error})" if outcome.error else ""
            return f"  {where}: sent{extra}"
        if outcome.status == "retry" and outcome.retry_after:
            verdict = f"rate-limited, retry after {outcome.retry_after:g} s"
        elif outcome.status == "retry":
            verdict = "not sent, try again later"
        elif "forbidden" in outcome.error.lower() or "missing access" in outcome.error.lower():
            verdict = "forbidden"
        elif outcome.chat_gone:
            verdict = "chat gone"
        else:
            verdict = "failed"
        return f"  {where}: {verdict}: {escape_hidden(outcome.error)}"


def sample_alert(config: Config, store: Any, now: datetime) -> OutgoingAlert:
    """Build the test alert: marked as a test, about the first symbol with stored bars (else a made-up one)."""
    symbol, bars = _chart_bars(config, store, now)
    last = bars[-1]
    event = AlertEvent(SAMPLE_RULE, SAMPLE_KIND, symbol, last.time, {"price": last.close})
    source = "made-up prices (no bars stored yet)" if symbol == "SAMPLE" else f"its last stored close, {last.time:%Y-%m-%d}"
    text = (f"🧪 TEST from riskon: this chat receives alerts\n"
            f"This is a test message sent by `riskon send-test`, not a market signal.\n"
            f"Alerts look like this one: a headline, the figures and a chart. The chart shows {symbol} at "
            f"{format_price(last.close)}, {source}.")
    chart = _draw(event, bars)
    return OutgoingAlert((event,), text, chart)


def _chart_bars(config: Config, store: Any, now: datetime) -> tuple[str, list[Bar]]:
    since = now - timedelta(days=CHART_DAYS)
    for symbol in config.symbols:
        bars = [b for b in store.load_bars(symbol.id) if b.final]
        if len(bars) >= 20:
            return symbol.id, [b for b in bars if b.time >= bars[-1].time - timedelta(days=CHART_DAYS)]
    start = datetime(since.year, since.month, since.day, tzinfo=timezone.utc)
    closes = [100 * (1 + 0.002 * day + 0.03 * math.sin(day / 9)) for day in range(CHART_DAYS)]
    return "SAMPLE", [Bar(start + timedelta(days=day), c, c * 1.01, c * 0.99, c) for day, c in enumerate(closes)]


def _draw(event: AlertEvent, bars: list[Bar]) -> bytes | None:
    from alerts.charts import alert_chart

    return alert_chart(event, bars, days=CHART_DAYS, title=f"TEST: {event.symbol}, a sample chart (not a signal)")


async def send_test(runtime: Runtime, channel: str | None = None, report: Callable[[str], None] = print) -> list[TestSend]:
    """Send the test alert to every subscribed chat of every channel (or one); report each outcome as it comes."""
    notifiers = dict(runtime.notifiers)
    if channel is not None:
        if channel not in notifiers:
            known = sorted(notifiers)
            raise RiskonError(f"--channel {escape_hidden(channel)}: not a configured channel"
                              f"{did_you_mean(channel, known, 'configured')}")
        notifiers = {channel: notifiers[channel]}
    alert = sample_alert(runtime.config, runtime.store, runtime.now())
    results: list[TestSend] = []
    for name, notifier in notifiers.items():
        chats = [ChatTarget(s.chat_id, s.thread_id) for s in runtime.store.active_subscriptions(name)]
        if not chats:
            report(f"{name}: no subscribed chats; nothing sent"
                   + (" (send /subscribe in a chat with the bot)" if name in ("telegram", "discord") else ""))
            continue
        try:
            await notifier.start(listen=False)
        except Exception as exc:  # a bad token or an unreachable service: every chat of the channel failed
            report(f"{name}: could not connect: {escape_hidden(str(exc))}")
            results += [TestSend(name, chat, SendOutcome("failed", error=str(exc))) for chat in chats]
            continue
        try:
            report(f"{name}: {len(chats)} chat(s)")
            outcomes = await asyncio.gather(*(_send_one(notifier, chat, alert) for chat in chats))
            for chat, outcome in zip(chats, outcomes):
                sent = TestSend(name, chat, outcome)
                report(sent.describe())
                results.append(sent)
        finally:
            await notifier.stop()
    return results


async def _send_one(notifier: Any, chat: ChatTarget, alert: OutgoingAlert) -> SendOutcome:
    try:
        return await asyncio.wait_for(notifier.send(chat, alert), SEND_TIMEOUT_SECONDS)
    except TimeoutError:
        return SendOutcome("retry", None, f"{notifier.name}: no answer within {SEND_TIMEOUT_SECONDS:g} s")
    except Exception as exc:  # an adapter bug: say so for this chat, go on with the others
        return SendOutcome("failed", None, f"{notifier.name}: {type(exc).__name__}: {exc}")
