"""The settings models of the live feed kinds, apart from their feeds: validating a config loads no feed code.

A replay or a backtest reads every feed from CSVs, yet checks the config as written; the feeds themselves
(bot/feeds/yahoo.py, exchange.py, flows.py, fragility.py, composite.py) load when one is built.
"""

from __future__ import annotations

import importlib.util
import re
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

# iShares' fund pages of the two default funds; the holdings CSV's header carries shares outstanding.
ISHARES_DEFAULTS = {
    "IWM": "https://www.ishares.com/us/products/239710/ishares-russell-2000-etf/1467271812596.ajax"
           "?fileType=csv&fileName=IWM_holdings&dataType=fund",
    "IWN": "https://www.ishares.com/us/products/239712/ishares-russell-2000-value-etf/1467271812596.ajax"
           "?fileType=csv&fileName=IWN_holdings&dataType=fund",
}

# How far one daily close may jump before it is a suspect spike, per asset class (percent).
# Real one-day moves the defaults must let through: ^RUT -14.3% (2020-03-16), BTC -37% (2020-03-12).
# Real one-day moves that reverted the next day (XRP +34% on 2025-03-02) must pass as well.
DEFAULT_SPIKE_PCT = {"index": 12.0, "etf": 15.0, "crypto": 40.0, "composite": 30.0}


class FeedSettings(BaseModel):
    """Settings every live feed kind shares: spike thresholds, staleness and backoff."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    spike_pct: dict[str, float] = Field(
        default_factory=dict,
        description="per asset class (index, etf, crypto, composite): a one-bar move above this percent that "
        "reverts on the next bar is dropped as a bad print; defaults: index 12, etf 15, crypto 40, composite 30",
    )
    stale_after_seconds: float = Field(
        1800.0, gt=0, le=30 * 86400, description="a symbol with no good update for this long (while its market "
        "is open) is reported stale"
    )
    timeout_seconds: float = Field(20.0, gt=0, le=600, description="give up on one request after this long")
    backoff_base_seconds: float = Field(5.0, gt=0, le=3600, description="first pause after a failed request")
    backoff_max_seconds: float = Field(900.0, gt=0, le=86400, description="longest pause after repeated failures")

    def spike_threshold(self, asset_class: str) -> float:
        """Return the spike threshold (percent) for an asset class."""
        return float(self.spike_pct.get(asset_class, DEFAULT_SPIKE_PCT.get(asset_class, 20.0)))


def plain_base_url(value: str | None) -> str | None:
    """Check a base-URL override (a proxy or mirror) and drop its trailing slash."""
    if value is not None and not re.match(r"^https?://[^/\s]+", value):
        raise ValueError("must start with http:// or https:// and name a host")
    return value.rstrip("/") if value else value


# Which symbols a fund's figure belongs beside, when the config does not say: the index, its ETF and its proxy.
SHOWN_ON = {"IWM": ["^RUT", "IWM"], "IWN": ["^RUJ", "IWN"]}


class YahooSettings(FeedSettings):
    """Settings of a yahoo feed."""

    base_url: str | None = Field(
        None, description="send every request for https://*.yahoo.com to this base URL instead (a corporate proxy "
        "or mirror; tests point it at a fake); the path and query are kept"
    )
    calendar: str = Field("XNYS", description="exchange_calendars code of the market whose hours gate polling")
    confirm_after_close_minutes: float = Field(
        15.0, ge=0, le=720, description="minutes after the close before the poll that confirms the daily bar"
    )
    max_concurrency: int = Field(
        40, ge=1, le=64, description="symbols requested at once (one request per symbol; a 40-symbol list in one wave)")
    confirm_retry_max_minutes: float = Field(
        60.0, ge=1, le=720, description="longest wait between two tries for a closing bar Yahoo has not published "
        "yet (the first try again is within 5 minutes, each next within twice as long, jittered as every back-off; tries "
        "stop at the next open)")
    cache_dir: str | None = Field(None, description="folder for yfinance's timezone and cookie caches")

    @field_validator("base_url")
    @classmethod
    def _plain_url(cls, value: str | None) -> str | None:
        return plain_base_url(value)


class ExchangeSettings(FeedSettings):
    """Settings of an exchange feed (any ccxt exchange id)."""

    exchange: str = Field("kraken", description="ccxt exchange id: kraken (serves the US), coinbase, binance, ...")
    base_url: str | None = Field(
        None, description="send every API request to this base URL instead of the exchange's hosts (a proxy or "
        "mirror; tests point it at a fake); paths are kept, websockets use ws:// or wss:// on the same host"
    )
    stream: bool = Field(False, description="take the forming bar from websocket tickers (ccxt.pro), polling "
                                            "while the socket is down")
    stream_silent_seconds: float = Field(
        60.0, gt=0, le=3600, description="a websocket price older than this is not used: prices come over REST "
        "(logged once) until the socket ticks again"
    )
    full_history: bool | None = Field(
        None, description="does the exchange serve daily candles back to the listing? default: known per "
        "exchange (kraken: no, only the newest 720)"
    )
    rate_limit_ms: int | None = Field(
        None, ge=0, le=60000, description="milliseconds between requests; leave unset to respect the exchange's "
        "own published limit (set it only for a mirror or proxy with limits of its own)"
    )
    page_limit: int = Field(1000, ge=10, le=5000, description="candles asked for per OHLCV request")
    options: dict[str, Any] = Field(default_factory=dict, description="extra ccxt options for the exchange")

    @field_validator("exchange")
    @classmethod
    def _exchange_id(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z0-9]{2,40}", value):
            raise ValueError("must be a ccxt exchange id in lower case, e.g. kraken, coinbase, binance")
        # Read from ccxt's folder, not by importing it: check-config said "Config OK" of a typo that `run` refused.
        known = ccxt_exchange_ids()
        if known and value not in known:
            import difflib

            guess = difflib.get_close_matches(value, known, n=1)
            raise PydanticCustomError("exchange", "ccxt has no exchange {name}{hint}", {
                "name": repr(value), "hint": f" (did you mean '{guess[0]}'?)" if guess else ""})
        return value

    @field_validator("base_url")
    @classmethod
    def _plain_url(cls, value: str | None) -> str | None:
        return plain_base_url(value)


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


class FragilityFund(BaseModel):
    """Where one fund's members come from, and which symbols its figure is shown beside."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ishares_url: str | None = Field(None, description="iShares holdings CSV URL (default: known for IWM and IWN)")
    shown_on: list[str] | None = Field(
        None, description="symbols whose /status and new-high or hollow-rally alerts carry this fund's figure "
        "(default: IWM -> ^RUT, IWM; IWN -> ^RUJ, IWN)")
    csv: str | None = Field(None, description="history to import once: date,unprofitable_pct_count,"
                                              "unprofitable_pct_weight,coverage_pct")


class FragilitySettings(FeedSettings):
    """Settings of a fragility feed."""

    funds: dict[str, FragilityFund] = Field(default_factory=lambda: {"IWM": FragilityFund()},
                                            description="fund id (IWM, IWN) -> its holdings source")
    snapshot_every_days: float = Field(7.0, ge=0.01, le=92, description="days between two snapshots of a fund")
    requests_per_second: float = Field(
        0.5, gt=0, le=100, description="Yahoo requests per second, at most (0.5: one every 2 s, about 75 minutes "
        "for the Russell 2000)")
    time_budget_minutes: float = Field(
        180.0, gt=0, le=7 * 1440, description="a snapshot not finished this long after it started is closed with "
        "the members read so far (and is incomplete unless their weight still reaches min_coverage_pct)")
    min_coverage_pct: float = Field(90.0, ge=0, le=100, description="index weight (percent) that must have a "
                                                                    "figure for a snapshot to count and alert")
    retry_incomplete_minutes: float = Field(60.0, gt=0, le=10080, description="wait before a new snapshot after "
                                                                              "an incomplete one")
    max_attempts: int = Field(3, ge=1, le=20, description="tries per member and snapshot when Yahoo fails")
    max_figure_age_days: int = Field(450, ge=90, le=1500, description="a TTM figure running to a period end older "
                                                                      "than this counts as no data")
    work_per_poll_seconds: float = Field(120.0, gt=0, le=3600, description="longest stretch one poll works before "
                                                                           "handing back to the scheduler")
    max_retry_after_seconds: float = Field(900.0, gt=0, le=86400, description="longest Retry-After honoured "
                                                                              "within a poll")
    stale_after_seconds: float = Field(10 * 86400.0, gt=0, le=90 * 86400,
                                       description="a fund with no finished snapshot for this long is stale")
    yahoo_base_url: str | None = Field(None, description="send Yahoo requests here instead (proxy, mirror, fake)")
    ishares_base_url: str | None = Field(None, description="send iShares requests here instead")

    @field_validator("yahoo_base_url", "ishares_base_url")
    @classmethod
    def _plain_url(cls, value: str | None) -> str | None:
        return plain_base_url(value)

    @field_validator("funds")
    @classmethod
    def _known_funds(cls, value: dict[str, FragilityFund]) -> dict[str, FragilityFund]:
        for fund, source in value.items():
            if not re.fullmatch(r"[A-Z0-9.^-]{1,12}", fund):
                raise ValueError(f"fund id '{fund[:20]}' must be a ticker like IWM")
            if source.ishares_url is None and fund not in ISHARES_DEFAULTS:
                raise ValueError(f"{fund}: give ishares_url (known by default: {', '.join(ISHARES_DEFAULTS)})")
        return value

    def shown_on(self, fund: str) -> list[str]:
        """Return the symbols a fund's figure is shown beside."""
        source = self.funds.get(fund)
        return list(source.shown_on) if source and source.shown_on is not None else SHOWN_ON.get(fund, [fund])


class CompositeIndex(BaseModel):
    """How one composite index is made from its members."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    members: list[str] = Field(min_length=1, description="riskon symbol ids whose daily bars make the index")
    weighting: Literal["supply", "equal"] = Field(
        "equal", description="rebalanced daily. supply: members weighted by circulating supply x price (a "
        "market-cap basket); equal: each member counts the same every day"
    )
    supply: dict[str, float] = Field(default_factory=dict, description="circulating supply per member (units)")
    base_date: date | None = Field(None, description="the index is base_value on this date (default: the first "
                                                     "date every member has a bar)")
    base_value: float = Field(100.0, gt=0, description="the index level at the base date")

    @model_validator(mode="after")
    def _validate_supply(self) -> CompositeIndex:
        if len(set(self.members)) != len(self.members):
            raise ValueError("a member is listed twice")
        if self.weighting == "supply":
            missing = [m for m in self.members if m not in self.supply]
            if missing:
                raise ValueError(f"weighting: supply needs a supply for every member; missing {', '.join(missing)}")
            bad = [m for m, v in self.supply.items() if not v > 0]
            if bad:
                raise ValueError(f"supply must be positive; check {', '.join(bad)}")
        unknown = [m for m in self.supply if m not in self.members]
        if unknown:
            raise ValueError(f"supply names symbols that are not members: {', '.join(unknown)}")
        return self


class CompositeSettings(FeedSettings):
    """Settings of a composite feed: its indexes, by the symbol's source name (default: its id)."""

    indexes: dict[str, CompositeIndex] = Field(default_factory=dict, description="index name -> its definition")


def ccxt_exchange_ids() -> list[str]:
    """Return the exchange ids ccxt ships (one module each), read from its folder without importing it."""
    # Importing ccxt loads all of its ~110 exchanges (about 1 s and 70 MB): that happens off the loop, at the
    # first poll, and only where an exchange feed is configured.
    spec = importlib.util.find_spec("ccxt")
    if spec is None or not spec.submodule_search_locations:
        return []
    folder = Path(next(iter(spec.submodule_search_locations))) / "async_support"
    return sorted(p.stem for p in folder.glob("*.py") if not p.stem.startswith("_"))
