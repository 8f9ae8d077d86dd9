"""Telegram message text: HTML escaping and splitting under Telegram's length limits. Pure."""

from __future__ import annotations

import html

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024


def to_html(text: str, bold_first_line: bool = False) -> str:
    """Escape plain text for Telegram's HTML parse mode; optionally bold the headline."""
    if not bold_first_line:
        return html.escape(text, quote=False)
    head, newline, rest = text.partition("\n")
    return f"<b>{html.escape(head, quote=False)}</b>{newline}{html.escape(rest, quote=False)}"


def units(text: str) -> int:
    """Return the length Telegram counts: UTF-16 code units (an emoji is two)."""
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Split plain text into pieces whose escaped HTML fits `limit`, on line boundaries where possible."""
    budget = limit - 7  # room for the <b></b> around a headline
    pieces: list[str] = []
    current = ""
    for line in text.split("\n"):
        while units(html.escape(line, quote=False)) > budget:  # one line too long: cut it at the budget
            cut = len(line)
            while units(html.escape(line[:cut], quote=False)) > budget:
                cut = max(1, cut * budget // max(units(html.escape(line[:cut], quote=False)), 1) - 1)
            if current:
                pieces.append(current)
                current = ""
            pieces.append(line[:cut])
            line = line[cut:]
        candidate = f"{current}\n{line}" if current else line
        if current and units(html.escape(candidate, quote=False)) > budget:
            pieces.append(current)
            candidate = line
        current = candidate
    if current.strip() or not pieces:
        pieces.append(current)
    return [p for p in pieces if p.strip()] or [text[:budget]]
