"""flows: ETF daily net creations/redemptions in USD, implied as change in shares outstanding x NAV."""

from __future__ import annotations

import asyncio
import csv
import logging
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.feeds.base import FeedResult
from bot.feeds.quality import Backoff, FeedSettings, StaleMark, StaleTracker, retry_after_seconds

log = logging.getLogger("riskon.feeds.flows")

ISHARES_HOST = re.compile(r"^https?://(www\.)?ishares\.com", re.IGNORECASE)
# iShares' fund pages of the two default funds; the holdings CSV's header carries shares outstanding.
ISHARES_DEFAULTS = {
    "IWM": "https://www.ishares.com/us/products/239710/ishares-russell-2000-etf/1467271812596.ajax"
           "?fileType=csv&fileName=IWM_holdings&dataType=fund",
    "IWN": "https://www.ishares.com/us/products/239712/ishares-russell-2000-value-etf/1467271812596.ajax"
           "?fileType=csv&fileName=IWN_holdings&dataType=fund",
}


class Fund(BaseModel):
    """Where one fund's shares outstanding and NAV come from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ishares_url: str | None = Field(
        None, description="iShares fund data URL (holdings CSV with 'Shares Outstanding' in its header); "
        "default: known for IWM and IWN; 'none' to skip iShares"
    )
    yahoo: str | None = Field(None, description="Yahoo symbol for the get_shares_full fallback (default: the fund)")
    nav_symbol: str | None = Field(
        None, description="riskon symbol whose daily close stands in for NAV when the source gives none "
        "(default: the fund)"
    )
    csv: str | None = Field(None, description="CSV to import: date,flow_usd or date,shares_outstanding[,nav], or "
                                                "a snapshot file with a ticker column (stockanalysis layout)")
    history_csv: list[str] = Field(
        default_factory=list, description="replay and backtest: file stems in the --data folder holding the fund's "
        "shares outstanding history (any layout `csv` reads); flows are derived from them as live")


class FlowsSettings(FeedSettings):
    """Settings of a flows feed."""

    funds: dict[str, Fund] = Field(default_factory=dict, description="fund id (e.g. IWM) -> its sources")
    stale_after_seconds: float = Field(
        3 * 86400.0, gt=0, le=30 * 86400, description="a fund whose sources all fail for this long is reported stale"
    )
    yahoo_base_url: str | None = Field(
        None, description="send Yahoo requests here instead (proxy, mirror, fake); use the yahoo feed's base_url: "
        "yfinance keeps one session per process"
    )
    ishares_base_url: str | None = Field(None, description="send iShares requests here instead")
    use_yahoo: bool = Field(True, description="fall back to yfinance's get_shares_full when iShares fails")
    max_daily_change_pct: float = Field(
        8.0, gt=0, le=100, description="a one-day change in shares outstanding above this percent that reverts "
        "the next day is a bad value, not a flow"
    )
    max_unchanged_days: int = Field(
        10, ge=2, le=60, description="shares outstanding unchanged for more days than this is a stale source "
        "value: no flows are computed from it"
    )
    max_gap_days: int = Field(5, ge=1, le=30, description="no flow is computed across a longer gap between "
                                                          "two shares counts")
    history_days: int = Field(548, ge=10, le=3650, description="how far back the Yahoo fallback asks on first start")

    @field_validator("yahoo_base_url", "ishares_base_url")
    @classmethod
    def _plain_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must start with http:// or https:// and name a host")
        return value.rstrip("/") if value else value


@dataclass(frozen=True)
class SharesCount:
    """Shares outstanding of a fund on a day, with its NAV when the source gave one."""

    day: date
    shares: float
    nav: float | None = None
    source: str = ""


def _stamp(day: date) -> datetime:
    return datetime.combine(day, time(0), timezone.utc)


def clean_shares(counts: Iterable[SharesCount], max_change_pct: float = 8.0,
                 max_unchanged_days: int = 10) -> tuple[list[SharesCount], list[tuple[SharesCount, str]]]:
    """Keep one trustworthy count per day; drop duplicates, one-day excursions and stale repeats, with reasons."""
    dropped: list[tuple[SharesCount, str]] = []
    by_day: dict[date, list[SharesCount]] = {}
    for count in counts:
        if not (count.shares == count.shares) or count.shares <= 0:  # NaN or non-positive
            dropped.append((count, "shares outstanding missing or not positive"))
            continue
        by_day.setdefault(count.day, []).append(count)
    # One value per day: when a source reports two for a date, the one continuing the series is kept.
    chosen: list[SharesCount] = []
    for day in sorted(by_day):
        candidates = by_day[day]
        distinct = {c.shares for c in candidates}
        if len(distinct) == 1:
            chosen.append(next((c for c in candidates if c.nav is not None), candidates[-1]))
            continue
        reference = chosen[-1].shares if chosen else sorted(distinct)[len(distinct) // 2]
        best = min(candidates, key=lambda c: abs(c.shares - reference))
        chosen.append(best)
        for other in candidates:
            if other.shares != best.shares:
                dropped.append((other, f"second value for {day} ({other.shares:,.0f} vs {best.shares:,.0f})"))
    # One-day excursions that revert are stale or wrong values, not a creation and a redemption.
    kept: list[SharesCount] = []
    index = 0
    while index < len(chosen):
        count = chosen[index]
        if kept:
            move = (count.shares / kept[-1].shares - 1) * 100
            if abs(move) > max_change_pct:
                following = chosen[index + 1] if index + 1 < len(chosen) else None
                if following is None:
                    dropped.append((count, f"shares moved {move:+.1f}% in a day: held until the next day confirms"))
                    index += 1
                    continue
                if abs(following.shares / kept[-1].shares - 1) * 100 <= max_change_pct / 2:
                    dropped.append((count, f"shares moved {move:+.1f}% for one day and came back: a bad value"))
                    index += 1
                    continue
        kept.append(count)
        index += 1
    # A count that never changes for weeks is a source stuck on an old value.
    result: list[SharesCount] = []
    run_start = 0
    for position, count in enumerate(kept):
        if position and count.shares != kept[position - 1].shares:
            run_start = position
        if (count.day - kept[run_start].day).days > max_unchanged_days:
            dropped.append((count, f"unchanged since {kept[run_start].day}: a stale value"))
            continue
        result.append(count)
    return result, dropped


# The source of a count derived as total assets / NAV (snapshots without a shares column): it is a
# different measure from reported shares, so no flow is computed across a change between the two.
ASSETS_OVER_NAV = "assets/nav"


def implied_flows(counts: Sequence[SharesCount], nav_of: Mapping[date, float] | None = None,
                  max_gap_days: int = 5) -> list[tuple[date, float, float]]:
    """Return (day, flow_usd, nav) for each count after the first: change in shares x that day's NAV.

    Without a NAV from the source, the close of that day stands in (or the last close before it, for a count
    dated on a market holiday).
    The change between two counts up to `max_gap_days` apart is the net flow of the days between them, dated
    on the later count; across a longer gap the flows are unknown and none is returned.
    """
    flows = []
    for before, after in zip(counts, counts[1:]):
        if (after.day - before.day).days > max_gap_days:
            continue
        if (before.source == ASSETS_OVER_NAV) != (after.source == ASSETS_OVER_NAV):
            continue  # the measure changed, not the shares
        nav = after.nav if after.nav is not None else _last_price(nav_of or {}, after.day, max_gap_days)
        if nav is None or not nav > 0:
            continue
        flows.append((after.day, (after.shares - before.shares) * nav, nav))
    return flows


# Snapshot files with one row per day and ticker (stockanalysis.com scrapes): shares in millions, assets
# in USD millions, NAV per share.
SNAPSHOT_COLUMNS = {"snapshot_date_utc", "ticker", "shares_out_millions", "total_assets_musd", "nav"}


def _last_price(prices: Mapping[date, float], day: date, max_days: int) -> float | None:
    """Return the price of `day`, or the last one before it within `max_days` (a count dated on a holiday)."""
    for back in range(max_days + 1):
        price = prices.get(day - timedelta(days=back))
        if price is not None:
            return price
    return None


def read_flows_csv(path: str | Path, fund: str | None = None
                   ) -> tuple[list[tuple[date, float]], list[SharesCount], list[str]]:
    """Read `date,flow_usd`, `date,shares_outstanding[,nav]` or a snapshot file; return flows, counts, bad rows.

    A snapshot file (columns snapshot_date_utc, ticker, shares_out_millions, total_assets_musd, nav) holds
    several funds: only `fund`'s rows are read. Where its shares column is blank, total assets / NAV stands in.
    """
    path = Path(path)
    flows: list[tuple[date, float]] = []
    counts: list[SharesCount] = []
    problems: list[str] = []
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        fields = {f.strip().lower() for f in reader.fieldnames or ()}
        if SNAPSHOT_COLUMNS <= fields:
            return [], *_read_snapshots(path, reader, fund)
        if "date" not in fields or not ({"flow_usd", "shares_outstanding"} & fields):
            raise ValueError(f"{path}: needs columns date,flow_usd or date,shares_outstanding[,nav] (or a "
                             f"snapshot file: {', '.join(sorted(SNAPSHOT_COLUMNS))}); "
                             f"found {', '.join(sorted(fields)) or 'none'}")
        for line, raw in enumerate(reader, start=2):
            row = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items()}
            try:
                day = date.fromisoformat(row["date"][:10])
                if "flow_usd" in row and row["flow_usd"]:
                    value = float(row["flow_usd"].replace(",", ""))
                    if value != value:
                        raise ValueError("flow_usd is not a number")
                    flows.append((day, value))
                elif row.get("shares_outstanding"):
                    nav = float(row["nav"].replace(",", "")) if row.get("nav") else None
                    counts.append(SharesCount(day, float(row["shares_outstanding"].replace(",", "")), nav, "csv"))
                else:
                    raise ValueError("no flow_usd or shares_outstanding value")
            except (ValueError, KeyError) as exc:
                problems.append(f"{path.name}:{line}: {exc}")
    return flows, counts, problems


def _read_snapshots(path: Path, reader: csv.DictReader, fund: str | None) -> tuple[list[SharesCount], list[str]]:
    """Read one fund's rows of a snapshot file as shares counts (with NAV)."""
    if fund is None:
        raise ValueError(f"{path}: a snapshot file holds several funds; say which one to read")
    counts: list[SharesCount] = []
    problems: list[str] = []
    for line, raw in enumerate(reader, start=2):
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items()}
        if row.get("ticker", "").upper() != fund.upper():
            continue
        try:
            day = date.fromisoformat(row["snapshot_date_utc"][:10])
            nav = float(row["nav"]) if row.get("nav") else None
            if row.get("shares_out_millions"):
                counts.append(SharesCount(day, float(row["shares_out_millions"]) * 1e6, nav, f"{path.name}:{line}"))
            elif row.get("total_assets_musd") and nav:
                shares = float(row["total_assets_musd"]) * 1e6 / nav
                counts.append(SharesCount(day, shares, nav, ASSETS_OVER_NAV))
            else:
                raise ValueError("no shares_out_millions, nor total_assets_musd with a nav")
        except (ValueError, KeyError) as exc:
            problems.append(f"{path.name}:{line}: {exc}")
    return counts, problems


def parse_ishares_fund_csv(text: str) -> SharesCount:
    """Read the as-of date, shares outstanding (and NAV when given) from the header of an iShares fund CSV."""
    values: dict[str, str] = {}
    for row in csv.reader(text.splitlines()[:30]):
        if len(row) >= 2 and row[0].strip():
            values[row[0].strip().lower()] = row[1].strip()
    as_of = values.get("fund holdings as of") or values.get("as of") or values.get("as of date")
    shares = values.get("shares outstanding")
    if not as_of or not shares:
        raise ValueError("iShares answer has no 'Fund Holdings as of' and 'Shares Outstanding' lines")
    day = _parse_ishares_date(as_of)
    nav_text = values.get("nav") or values.get("net asset value")
    nav = float(re.sub(r"[^0-9.]", "", nav_text)) if nav_text and re.search(r"\d", nav_text) else None
    return SharesCount(day, float(re.sub(r"[^0-9.]", "", shares)), nav, "ishares")


def _parse_ishares_date(text: str) -> date:
    for pattern in ("%b %d, %Y", "%B %d, %Y", "%Y-%m-%d", "%m/%d/%Y", "%d-%b-%Y"):
        try:
            return datetime.strptime(text.strip(), pattern).date()
        except ValueError:
            continue
    raise ValueError(f"iShares date '{text}' is not in a known format")


class FlowsFeed:
    """Collect each fund's shares outstanding daily, store them, and keep its implied flows current."""

    def __init__(self, name: str, settings: FlowsSettings, symbols: Sequence[Any] = (), store: Any = None) -> None:
        self.name = name
        self.settings = settings
        self.store = store
        self.backoff = Backoff(settings.backoff_base_seconds, settings.backoff_max_seconds)
        self.tracker = StaleTracker(timedelta(seconds=settings.stale_after_seconds))
        self._http: Any = None
        self._yahoo_session: Any = None
        self._imported: set[str] = set()

    def stale(self, now: datetime) -> dict[str, StaleMark]:
        """Return the funds whose flows stopped updating, with since-when and why."""
        return self.tracker.stale(now)

    async def fetch(self, symbols: Sequence[str], since: Mapping[str, datetime | None], now: datetime) -> FeedResult:
        """Update every configured fund's flows in the store; return errors per fund (flows are not bars)."""
        errors: dict[str, str] = {}
        for fund, source in self.settings.funds.items():
            why = self.backoff.why_waiting(fund, now)
            if why is not None:
                errors[fund] = why
                continue
            try:
                problem = await self._update(fund, source, now)
            except Exception as exc:  # one fund's failure never stops the others
                problem = f"{type(exc).__name__}: {exc}"[:300]
                self.backoff.failed(fund, now, getattr(exc, "retry_after", None))
            if problem:
                errors[fund] = problem
                self.tracker.failed(fund, now, problem)
                log.warning("%s %s: %s", self.name, fund, problem)
            else:
                self.backoff.succeeded(fund)
                self.tracker.ok(fund, now)
        return FeedResult(errors=errors)

    async def _update(self, fund: str, source: Fund, now: datetime) -> str | None:
        """Import the CSV once, fetch today's count, recompute flows; return a problem or None."""
        if source.csv and fund not in self._imported:
            # Files and Yahoo are read in a worker thread; the store is only touched from this one.
            self._import_csv(fund, source.csv, await asyncio.to_thread(read_flows_csv, source.csv, fund), now)
            self._imported.add(fund)
        counts: list[SharesCount] = []
        problems = []
        url = source.ishares_url if source.ishares_url is not None else ISHARES_DEFAULTS.get(fund)
        if url and url.lower() != "none":
            try:
                counts.append(await self._ishares(url))
            except Exception as exc:  # iShares down or changed: the Yahoo fallback takes over
                problems.append(f"iShares: {_short(exc)}")
        if not counts and self.settings.use_yahoo:
            try:
                known = self.store.fund_shares(fund)
                start = (known[-1][0] - timedelta(days=10)) if known else \
                    now.date() - timedelta(days=self.settings.history_days)
                counts.extend(await asyncio.to_thread(self._yahoo_shares, fund, source, start, now))
            except Exception as exc:
                problems.append(f"Yahoo shares: {_short(exc)}")
        if counts:
            self.store.upsert_fund_shares(fund, [(c.day, c.shares, c.nav, c.source) for c in counts], now)
        self._recompute(fund, source, now)
        if not counts and problems:
            return "; ".join(problems)
        return None

    def _import_csv(self, fund: str, path: str, parsed: tuple, now: datetime) -> None:
        flows, counts, problems = parsed
        for problem in problems:
            log.warning("%s %s: skipped %s", self.name, fund, problem)
        if flows:
            self.store.upsert_flows(fund, [(_stamp(d), v, None, None, "csv") for d, v in flows], now)
        if counts:
            self.store.upsert_fund_shares(fund, [(c.day, c.shares, c.nav, c.source) for c in counts], now)
        log.info("%s %s: imported %d flows and %d shares counts from %s", self.name, fund, len(flows), len(counts),
                 path)

    async def _ishares(self, url: str) -> SharesCount:
        import aiohttp

        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.settings.timeout_seconds),
                                               headers={"User-Agent": "riskon (ETF flows)"})
        text = await download_ishares(self._http, url, self.settings.ishares_base_url, "iShares fund file")
        return parse_ishares_fund_csv(text.lstrip("\ufeff"))

    def _yahoo_shares(self, fund: str, source: Fund, start: date, now: datetime) -> list[SharesCount]:
        import yfinance as yf

        from bot.feeds.yahoo_client import yahoo_session

        if self._yahoo_session is None:
            self._yahoo_session = yahoo_session(self.settings.yahoo_base_url)
        yf.config.debug.hide_exceptions = False
        ticker = yf.Ticker(source.yahoo or fund, session=self._yahoo_session)
        series = ticker.get_shares_full(start=start.isoformat(), end=(now.date() + timedelta(days=1)).isoformat())
        if series is None or len(series) == 0:
            raise ValueError("Yahoo has no shares outstanding for this fund")
        return [SharesCount(stamp.date(), float(value), None, "yahoo") for stamp, value in series.items()]

    def _recompute(self, fund: str, source: Fund, now: datetime) -> None:
        """Rebuild implied flows from every stored count, keeping imported flows where no count exists."""
        stored = [SharesCount(d, s, n, src) for d, s, n, src in self.store.fund_shares(fund)]
        kept, dropped = clean_shares(stored, self.settings.max_daily_change_pct, self.settings.max_unchanged_days)
        for count, reason in dropped:
            log.info("%s %s: ignored shares count of %s: %s", self.name, fund, count.day, reason)
        nav_symbol = source.nav_symbol or fund
        closes = {b.time.date(): b.close for b in self.store.load_bars(nav_symbol, since=_stamp(kept[0].day))} \
            if kept else {}
        flows = implied_flows(kept, closes, self.settings.max_gap_days)
        shares_of = {c.day: c.shares for c in kept}
        rows = [(_stamp(day), flow, shares_of[day], nav, "implied") for day, flow, nav in flows]
        if rows:
            self.store.upsert_flows(fund, rows, now)
        # Days whose count was found bad lose any flow computed before (e.g. from a stale duplicate).
        bad_days = {c.day for c, _ in dropped} - set(shares_of)
        if bad_days:
            self.store.delete_flows(fund, [_stamp(d) for d in bad_days], source="implied")

    async def close(self) -> None:
        """Close HTTP sessions."""
        if self._http is not None:
            await self._http.close()
            self._http = None
        if self._yahoo_session is not None:
            try:
                self._yahoo_session.close()
            except Exception:
                pass


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text[:160]}" if text else type(exc).__name__


def build(name: str, settings: FlowsSettings, symbols: Sequence[Any], store: Any) -> FlowsFeed:
    """Build a flows feed from its validated settings."""
    if isinstance(settings, Mapping):
        settings = FlowsSettings(**settings)
    return FlowsFeed(name, settings, symbols, store)


async def download_ishares(http: Any, url: str, base_url: str | None, what: str) -> str:
    """GET an iShares file through `http` (to `base_url` instead of ishares.com when set); raise on 429 and errors.

    A 429's error carries `retry_after` (seconds, from the answer's Retry-After) for the feed's back-off.
    """
    if base_url:
        url = ISHARES_HOST.sub(base_url, url, count=1)
    async with http.get(url) as response:
        if response.status == 429:
            error = RuntimeError(f"{what}: rate limited (429)")
            error.retry_after = retry_after_seconds(dict(response.headers))  # type: ignore[attr-defined]
            raise error
        if response.status >= 400:
            raise RuntimeError(f"{what}: HTTP {response.status}")
        return await response.text(errors="replace")
