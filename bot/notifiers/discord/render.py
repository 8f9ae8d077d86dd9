"""Discord message shapes, pure: alerts as embeds and command replies as messages, within Discord's limits."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from typing import Any, Mapping

import discord

from alerts.events import AlertEvent
from alerts.messages import format_alert, format_pct, format_price, format_usd
from bot.notifiers.base import ChatTarget, OutgoingAlert

# Discord's documented limits (https://discord.com/developers/docs/resources/message#embed-object-embed-limits).
CONTENT_LIMIT = 2000
EMBED_TOTAL_LIMIT = 6000
EMBEDS_PER_MESSAGE = 10
TITLE_LIMIT, DESCRIPTION_LIMIT, FOOTER_LIMIT = 256, 4096, 2048
FIELDS_PER_EMBED, FIELD_NAME_LIMIT, FIELD_VALUE_LIMIT = 25, 256, 1024
REPLY_MESSAGES = 5  # a command reply longer than this many messages is cut, saying so
CHART_NAME = "chart.png"

KIND_COLOURS = {
    "new_ath": 0x2ECC71,  # green: a new high
    "resistance_flip": 0x3498DB,  # blue: a level turned to support
    "level_cross": 0x1ABC9C,
    "pct_move": 0xF1C40F,
    "follow_through": 0x9B59B6,
    "outflow_divergence": 0xE67E22,  # orange: money leaving while price rises
    "drawdown": 0xE74C3C,  # red: a fall from the high
}
DEFAULT_COLOUR = 0x95A5A6
FIELD_WORDS = {"pct": "%", "usd": "USD", "ath": "ATH", "atl": "ATL", "ma": "MA", "rsi": "RSI", "etf": "ETF"}
NO_MENTIONS = discord.AllowedMentions.none()


def clip(text: str, limit: int) -> str:
    """Cut text to `limit` characters, marking the cut with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def figure(key: str, value: Any) -> str | None:
    """Render one alert figure the way a trader reads it; None for figures not worth a field."""
    if value is None or isinstance(value, (dict, list, tuple)):
        return None
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if "pct" in key:
            return format_pct(value)
        if "usd" in key or "flow" in key:
            return format_usd(value)
        return format_price(value)
    return str(value)


def alert_fields(values: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Return (name, value) embed fields for an alert's figures, within Discord's field limits."""
    fields = []
    for key, value in values.items():
        shown = figure(key, value)
        if shown:
            name = " ".join(FIELD_WORDS.get(word, word) for word in key.split("_") if word) or key
            name = name[0].upper() + name[1:]
            fields.append((clip(name, FIELD_NAME_LIMIT), clip(shown, FIELD_VALUE_LIMIT)))
    return fields[:FIELDS_PER_EMBED]


def alert_embed(event: AlertEvent, text: str, budget: int = EMBED_TOTAL_LIMIT) -> discord.Embed:
    """Build one alert's embed: headline, details, figures, bar time, rule; at most `budget` characters."""
    lines = text.strip().splitlines() or [f"{event.symbol} {event.kind}"]
    footer = clip(f"riskon · rule {event.rule_id} · {event.symbol}", FOOTER_LIMIT)
    title = clip(lines[0], TITLE_LIMIT)
    room = max(budget - len(title) - len(footer), 0)
    description = clip("\n".join(lines[1:]).strip(), min(DESCRIPTION_LIMIT, room)) if room else ""
    embed = discord.Embed(title=title, description=description or None,
                          colour=KIND_COLOURS.get(event.kind, DEFAULT_COLOUR), timestamp=event.bar_time)
    room -= len(description)
    for name, value in alert_fields(event.values):
        if len(name) + len(value) > room:
            break  # the figures are also in the description's words; drop the extra fields, not the alert
        embed.add_field(name=name, value=value, inline=True)
        room -= len(name) + len(value)
    embed.set_footer(text=footer)
    return embed


def event_text(event: AlertEvent) -> str:
    """Return an event's alert text; a figure the formatter misses costs the wording, never the alert."""
    try:
        return format_alert(event)
    except (KeyError, TypeError, ValueError):
        return f"🔔 {event.symbol} {event.kind.replace('_', ' ')}\nBar: {event.bar_time:%Y-%m-%d} · rule {event.rule_id}"


@dataclass(frozen=True)
class AlertMessage:
    """An alert as Discord receives it: its embeds and, when there is one, the chart they show."""

    embeds: list[discord.Embed]
    chart_png: bytes | None

    def file(self) -> discord.File | None:
        """Return a fresh File for the chart (a File can be read once)."""
        return discord.File(io.BytesIO(self.chart_png), CHART_NAME) if self.chart_png else None


def alert_message(alert: OutgoingAlert) -> AlertMessage:
    """Render an alert (one event or several) as embeds, never over 10 embeds or 6,000 characters in all."""
    events = list(alert.events)
    if len(events) == 1:
        texts = [alert.text]
    elif len(alert.texts) == len(events):
        texts = list(alert.texts)  # as recorded (with any note riskon added), not formatted afresh
    else:
        texts = [event_text(e) for e in events]
    shown = events[:EMBEDS_PER_MESSAGE]
    # Each embed gets an equal share of the 6,000 characters, less room for the "and N more" note.
    share = (EMBED_TOTAL_LIMIT - 100) // max(len(shown), 1)
    embeds = [alert_embed(event, text, share) for event, text in zip(shown, texts)]
    if len(events) > len(shown) and embeds:
        note = f" · and {len(events) - len(shown)} more alerts"
        embeds[-1].set_footer(text=clip(embeds[-1].footer.text or "", FOOTER_LIMIT - len(note)) + note)
    if not embeds:  # no events: the text alone (a test message, say)
        embeds = [discord.Embed(description=clip(alert.text, DESCRIPTION_LIMIT), colour=DEFAULT_COLOUR)]
    if alert.chart_png and embeds:
        embeds[0].set_image(url=f"attachment://{CHART_NAME}")
    return AlertMessage(embeds, alert.chart_png)


def send_nonce(alert: OutgoingAlert, chat: ChatTarget) -> str:
    """Return a nonce that is the same every time this alert goes to this chat (Discord drops repeats)."""
    key = "|".join([chat.chat_id, chat.thread_id, *(e.dedup_key for e in alert.events), alert.text[:200]])
    return hashlib.sha256(key.encode()).hexdigest()[:25]


def reply_chunks(text: str, limit: int = CONTENT_LIMIT, most: int = REPLY_MESSAGES) -> list[str]:
    """Split a command's plain-text reply into Discord messages at line breaks, escaping Markdown."""
    escaped = discord.utils.escape_markdown(text.strip() or "(nothing to show)")
    lines: list[str] = []
    for line in escaped.splitlines():
        # A line longer than a whole message is hard-wrapped.
        lines.extend(line[start:start + limit] for start in range(0, max(len(line), 1), limit))
    chunks: list[str] = []
    current: str | None = None
    for line in lines:
        if current is None:
            current = line
        elif len(current) + 1 + len(line) <= limit:
            current += "\n" + line
        else:
            chunks.append(current)
            current = line
    if current is not None:
        chunks.append(current)
    if len(chunks) > most:
        left = len(chunks) - most
        note = f"\n… ({left} more message{'s' if left != 1 else ''} cut)"
        chunks = chunks[:most]
        chunks[-1] = clip(chunks[-1], limit - len(note)) + note
    return chunks
