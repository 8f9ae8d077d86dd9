"""Market history the bot keeps: the bars cache, each rule's state per symbol, and ETF shares and flows."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any, Iterable, Mapping

from alerts.bars import Bar
from storage.base import StoreBase, iso, parse_time

BARS_PER_STATEMENT = 100  # 800 parameters: under the 999 of SQLite before 3.32
_BARS_INTO = "insert into bars (symbol, interval, time, open, high, low, close, volume) values "
_BAR_VALUES = "(?, ?, ?, ?, ?, ?, ?, ?)"
_BARS_REPLACE = (" on conflict(symbol, interval, time) do update set open = excluded.open, high = excluded.high, "
                 "low = excluded.low, close = excluded.close, volume = excluded.volume")
_UPSERT_BAR = _BARS_INTO + _BAR_VALUES + _BARS_REPLACE
_UPSERT_BARS = _BARS_INTO + ", ".join([_BAR_VALUES] * BARS_PER_STATEMENT) + _BARS_REPLACE


class MarketHistory(StoreBase):
    """Cache final bars, save rule state, and keep funds' shares counts and daily net flows."""

    _flows_writes = 0  # flows written through this connection (another connection's writes: PRAGMA data_version)
    _flows_read: dict[str, tuple[tuple[int, int], tuple[tuple[datetime, float], ...]]] | None = None

    # --- bars cache -------------------------------------------------------------------------
    def upsert_bars(self, symbol: str, bars: Iterable[Bar]) -> int:
        """Store final bars by (symbol, interval, time), replacing any earlier copy; return how many."""
        return self.upsert_bars_of({symbol: bars})

    def upsert_bars_of(self, bars_by_symbol: Mapping[str, Iterable[Bar]]) -> int:
        """Store several symbols' final bars, in order, a hundred to a statement (an engine batch's); return how many."""
        rows = [(symbol, b.interval, iso(b.time), b.open, b.high, b.low, b.close, b.volume)
                for symbol, bars in bars_by_symbol.items() for b in bars if b.final]
        if rows:
            conn = self.db.conn
            with self.transaction():
                # Each row is inserted (or replaces its earlier copy) as it would be alone, in the same order; a
                # statement of many rows pays SQLite's cost of running a statement once for all of them.
                whole = len(rows) - len(rows) % BARS_PER_STATEMENT
                for start in range(0, whole, BARS_PER_STATEMENT):
                    conn.execute(_UPSERT_BARS, [value for row in rows[start:start + BARS_PER_STATEMENT] for value in row])
                conn.executemany(_UPSERT_BAR, rows[whole:])
        return len(rows)

    def load_bars(self, symbol: str, interval: str = "1d", since: datetime | None = None) -> list[Bar]:
        """Return the cached final bars of a symbol, oldest first."""
        where, args = "symbol = ? and interval = ?", [symbol, interval]
        if since is not None:
            where += " and time >= ?"
            args.append(iso(since))
        cursor = self.db.execute(
            f"select time, open, high, low, close, volume from bars where {where} order by time", args
        )
        return [Bar(parse_time(t), o, h, l, c, v or 0.0, interval) for t, o, h, l, c, v in cursor.fetchall()]

    def recent_bars(self, symbol: str, count: int, interval: str = "1d") -> list[Bar]:
        """Return the newest `count` cached final bars of a symbol, oldest first."""
        cursor = self.db.execute(
            "select time, open, high, low, close, volume from bars where symbol = ? and interval = ? "
            "order by time desc limit ?",
            [symbol, interval, count],
        )
        rows = cursor.fetchall()[::-1]
        return [Bar(parse_time(t), o, h, l, c, v or 0.0, interval) for t, o, h, l, c, v in rows]

    def last_bar_time(self, symbol: str, interval: str = "1d") -> datetime | None:
        """Return the open time of the newest cached bar of a symbol."""
        row = self.db.execute(
            "select max(time) from bars where symbol = ? and interval = ?", [symbol, interval]
        ).fetchone()
        return parse_time(row[0]) if row and row[0] else None

    def bar_counts(self) -> dict[str, int]:
        """Return how many bars are cached per symbol."""
        return dict(self.db.execute("select symbol, count(*) from bars group by symbol").fetchall())

    # --- rule state --------------------------------------------------------------------------
    def rule_state(self, rule_id: str, symbol: str, kind: str | None = None,
                   ) -> tuple[Mapping[str, Any] | None, datetime | None]:
        """Return a rule's saved state for a symbol and the time of the last bar it has seen."""
        # With `kind`, nothing when another kind of rule saved it under this id: a rule whose kind was edited in
        # config.yaml starts afresh. A state saved before migration 0007 has no kind and is taken as it is.
        row = self.db.execute(
            "select state_json, last_bar_time, kind from rule_state where rule_id = ? and symbol = ?", [rule_id, symbol]
        ).fetchone()
        if not row or (kind is not None and row[2] is not None and row[2] != kind):
            return None, None
        return json.loads(row[0]) if row[0] else None, parse_time(row[1]) if row[1] else None

    def save_rule_state(
        self, rule_id: str, symbol: str, state: Mapping[str, Any] | None, last_bar_time: datetime, now: datetime,
        kind: str | None = None,
    ) -> None:
        """Save a rule's state for a symbol after it has seen the bar at `last_bar_time`."""
        self.save_rule_states([(rule_id, symbol, state, last_bar_time, now)], kind)

    def save_rule_states(
        self, states: Iterable[tuple[str, str, Mapping[str, Any] | None, datetime, datetime]], kind: str | None = None,
    ) -> None:
        """Save many rules' states at once, each as (rule_id, symbol, state, last_bar_time, now), of one kind."""
        self.save_rule_state_texts((rule_id, symbol, json.dumps(state) if state is not None else None, seen, now, kind)
                                   for rule_id, symbol, state, seen, now in states)

    def save_rule_state_texts(self, states: Iterable[tuple[str, str, str | None, datetime, datetime, str | None]],
                              ) -> None:
        """Save many rules' states given as JSON text, each with the kind of rule that saved it."""
        # As text: the engine keeps the text of an unchanged state and need not encode it again.
        rows = [(rule_id, symbol, text, iso(seen), iso(now), kind) for rule_id, symbol, text, seen, now, kind in states]
        if not rows:
            return
        with self.transaction():
            self.db.conn.executemany(
                "insert into rule_state (rule_id, symbol, state_json, last_bar_time, updated_at, kind) "
                "values (?,?,?,?,?,?) on conflict(rule_id, symbol) do update set state_json = excluded.state_json, "
                "last_bar_time = excluded.last_bar_time, updated_at = excluded.updated_at, kind = excluded.kind",
                rows,
            )

    # --- ETF flows ------------------------------------------------------------------------------
    def upsert_fund_shares(
        self, fund: str, counts: Iterable[tuple[Any, float, float | None, str]], now: datetime
    ) -> int:
        """Keep every reported (day, shares outstanding, NAV, source) of a fund; return how many rows were given."""
        rows = [
            (fund, str(day)[:10], float(shares), None if nav is None else float(nav), source or "", iso(now))
            for day, shares, nav, source in counts
        ]
        if rows:
            with self.transaction():
                self.db.conn.executemany(
                    "insert into fund_shares (fund, day, shares_outstanding, nav, source, recorded_at) "
                    "values (?,?,?,?,?,?) on conflict(fund, day, source, shares_outstanding) do update set "
                    "nav = coalesce(excluded.nav, fund_shares.nav)",
                    rows,
                )
        return len(rows)

    def fund_shares(self, fund: str) -> list[tuple[Any, float, float | None, str]]:
        """Return every stored shares count of a fund as (date, shares, nav, source), oldest first."""
        rows = self.db.execute(
            "select day, shares_outstanding, nav, source from fund_shares where fund = ? order by day, id", [fund]
        ).fetchall()
        return [(date.fromisoformat(d), s, n, src) for d, s, n, src in rows]

    def upsert_flows(
        self, fund: str, flows: Iterable[tuple[datetime, float, float | None, float | None, str]], now: datetime
    ) -> int:
        """Store daily net flows of a fund as (day, flow_usd, shares, nav, source), replacing that day's flow."""
        rows = [
            (fund, iso(moment), float(flow), shares, nav, source, iso(now))
            for moment, flow, shares, nav, source in flows
        ]
        if rows:
            with self.transaction():
                self.db.conn.executemany(
                    "insert into flows (fund, time, flow_usd, shares_outstanding, nav, source, recorded_at) "
                    "values (?,?,?,?,?,?,?) on conflict(fund, time) do update set flow_usd = excluded.flow_usd, "
                    "shares_outstanding = excluded.shares_outstanding, nav = excluded.nav, source = excluded.source, "
                    "recorded_at = excluded.recorded_at",
                    rows,
                )
            self._flows_changed()
        return len(rows)

    def _flows_changed(self) -> None:
        self._flows_writes += 1

    def delete_flows(self, fund: str, times: Iterable[datetime], source: str | None = None) -> int:
        """Forget a fund's flows on the given days (only those from `source`, when given)."""
        keys = [iso(t) for t in times]
        if not keys:
            return 0
        extra, args = ("and source = ?", [source]) if source else ("", [])
        self._flows_changed()
        with self.transaction():
            return sum(
                self.db.execute(f"delete from flows where fund = ? and time = ? {extra}", [fund, key, *args]).rowcount
                for key in keys
            )

    def load_flows(self, fund: str, since: datetime | None = None) -> list[tuple[datetime, float]]:
        """Return a fund's daily net flows in USD as (day, flow_usd), oldest first."""
        where, args = "fund = ?", [fund]
        if since is not None:
            where += " and time >= ?"
            args.append(iso(since))
        rows = self.db.execute(f"select time, flow_usd from flows where {where} order by time", args).fetchall()
        return [(parse_time(t), v) for t, v in rows]

    def current_flows(self, fund: str) -> tuple[tuple[datetime, float], ...]:
        """Return what `load_flows(fund)` returns, read again only when flows may have changed since.

        The engine asks for a fund's flows on every batch of bars; they change once a day at most.
        """
        version = (self.db.conn.execute("PRAGMA data_version").fetchone()[0], self._flows_writes)
        if self._flows_read is None:
            self._flows_read = {}
        held = self._flows_read.get(fund)
        if held is None or held[0] != version:
            held = self._flows_read[fund] = (version, tuple(self.load_flows(fund)))
        return held[1]
