"""An iShares fund's members and index weights, read from the holdings CSV the flows feed also downloads."""

from __future__ import annotations

import csv
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date

from bot.feeds.ishares import parse_ishares_date


@dataclass(frozen=True)
class Member:
    """One equity member of a fund: its ticker at iShares and at Yahoo, and its weight in the index."""

    ticker: str
    yahoo: str
    weight_pct: float
    name: str = ""


@dataclass(frozen=True)
class Holdings:
    """A fund's equity members as of a date, and how many non-equity rows (cash, futures) were left out."""

    as_of: date
    members: tuple[Member, ...]
    left_out: dict[str, int] = field(default_factory=dict)  # asset class -> rows not counted


class HoldingsError(ValueError):
    """Signal a holdings file riskon cannot read; the message says what and where."""


def yahoo_symbol(ticker: str) -> str:
    """Return Yahoo's name for an iShares ticker: share classes take a dash (BRK.B, BRK/B -> BRK-B)."""
    return re.sub(r"[./ ]+", "-", ticker.strip().upper())


def parse_ishares_holdings(text: str, source: str = "holdings file") -> Holdings:
    """Read the as-of date and the equity rows of an iShares holdings CSV (preamble, rows, disclaimer)."""
    lines = text.lstrip("\ufeff").splitlines()
    header_at = next((i for i, line in enumerate(lines) if line.lstrip('"').startswith("Ticker,")
                      or line.startswith('"Ticker",')), None)
    if header_at is None:
        raise HoldingsError(f"{source}: no 'Ticker,Name,...,Asset Class,...,Weight (%)' header line; "
                            "not an iShares holdings file")
    preamble: dict[str, str] = {}
    for row in csv.reader(lines[:header_at]):
        if len(row) >= 2 and row[0].strip():
            preamble[row[0].strip().lower()] = row[1].strip()
    as_of_text = preamble.get("fund holdings as of") or preamble.get("as of date")
    if not as_of_text:
        raise HoldingsError(f"{source}: no 'Fund Holdings as of' line before the header")
    try:
        as_of = parse_ishares_date(as_of_text)
    except ValueError as exc:
        raise HoldingsError(f"{source}: {exc}") from None
    reader = csv.reader(lines[header_at:])
    columns = [c.strip().lower() for c in next(reader)]
    wanted = {"ticker": "ticker", "asset class": "asset class", "weight (%)": "weight (%)", "name": "name"}
    missing = [label for label in ("ticker", "asset class", "weight (%)") if label not in columns]
    if missing:
        raise HoldingsError(f"{source}: header lacks {', '.join(missing)}")
    at = {key: columns.index(label) for key, label in wanted.items() if label in columns}
    weights: dict[str, float] = {}
    names: dict[str, str] = {}
    left_out: Counter[str] = Counter()
    for line_number, row in enumerate(reader, start=header_at + 2):
        if len(row) <= max(at.values()):
            if any(cell.strip().strip("\xa0") for cell in row) and weights:
                break  # the disclaimer after the last row
            continue
        asset_class = row[at["asset class"]].strip()
        ticker = row[at["ticker"]].strip()
        if asset_class.lower() != "equity":
            left_out[asset_class or "(blank)"] += 1
            continue
        if not ticker or ticker == "-":
            left_out["Equity without a ticker"] += 1
            continue
        try:
            weight = float(row[at["weight (%)"]].replace(",", "").strip() or "nan")
        except ValueError:
            raise HoldingsError(f"{source}:{line_number}: weight '{row[at['weight (%)']][:20]}' of {ticker[:12]} "
                                "is not a number") from None
        if not weight == weight or weight < 0:
            raise HoldingsError(f"{source}:{line_number}: weight of {ticker[:12]} is missing or negative")
        weights[ticker] = weights.get(ticker, 0.0) + weight  # a ticker listed twice counts once, with both weights
        names.setdefault(ticker, row[at["name"]].strip() if "name" in at else "")
    if not weights:
        raise HoldingsError(f"{source}: no equity rows")
    members = tuple(Member(t, yahoo_symbol(t), w, names[t]) for t, w in weights.items())
    return Holdings(as_of, members, dict(left_out))
