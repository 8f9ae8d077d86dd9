"""Fragility snapshots in SQLite: each snapshot's members, every member's last net income reading, the tallies."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Iterable, Sequence

from alerts.fragility import FragilityFigures, MemberIncome
from storage.db import Store

FINISHED = ("complete", "incomplete", "imported")


@dataclass(frozen=True)
class Snapshot:
    """One fragility snapshot of a fund, running or finished, with its tally once finished."""

    id: int
    fund: str
    started_at: datetime
    holdings_as_of: date | None
    finished_at: datetime | None
    status: str  # running | complete | incomplete | imported
    members: int | None = None
    covered: int | None = None
    unprofitable: int | None = None
    unprofitable_pct_count: float | None = None
    unprofitable_pct_weight: float | None = None
    coverage_pct_weight: float | None = None
    note: str = ""

    @property
    def day(self) -> date:
        """Return the date the snapshot stands for: when it finished (or, imported, the date given)."""
        return (self.finished_at or self.started_at).date()


@dataclass(frozen=True)
class PendingMember:
    """A member whose net income must still be read in this snapshot."""

    ticker: str
    yahoo: str
    weight_pct: float
    attempts: int


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat()


def _moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


_COLUMNS = ("id, fund, started_at, holdings_as_of, finished_at, status, members, covered, unprofitable, "
            "unprofitable_pct_count, unprofitable_pct_weight, coverage_pct_weight, note")


def _snapshot(row: Sequence) -> Snapshot:
    (sid, fund, started, as_of, finished, status, members, covered, losing, pct_count, pct_weight, coverage,
     note) = row
    return Snapshot(sid, fund, datetime.fromisoformat(started), date.fromisoformat(as_of) if as_of else None,
                    _moment(finished), status, members, covered, losing, pct_count, pct_weight, coverage, note or "")


class FragilityStore:
    """Named operations on the fragility tables of riskon's database."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.db = store.db

    def running(self, fund: str) -> Snapshot | None:
        """Return the fund's snapshot in progress, if any."""
        row = self.db.execute(f"select {_COLUMNS} from fragility_snapshots where fund = ? and status = 'running' "
                              "order by id desc limit 1", [fund]).fetchone()
        return _snapshot(row) if row else None

    def last_finished(self, fund: str, statuses: Sequence[str] = FINISHED) -> Snapshot | None:
        """Return the fund's newest finished snapshot of the given statuses."""
        marks = ",".join("?" for _ in statuses)
        row = self.db.execute(
            f"select {_COLUMNS} from fragility_snapshots where fund = ? and status in ({marks}) "
            "order by coalesce(finished_at, started_at) desc, id desc limit 1", [fund, *statuses]).fetchone()
        return _snapshot(row) if row else None

    def last_finished_on_or_before(self, fund: str, day: date,
                                   statuses: Sequence[str] = ("complete", "imported")) -> Snapshot | None:
        """Return the fund's newest finished snapshot dated `day` or earlier (no look-ahead in a replay)."""
        marks = ",".join("?" for _ in statuses)
        row = self.db.execute(
            f"select {_COLUMNS} from fragility_snapshots where fund = ? and status in ({marks}) "
            "and substr(coalesce(finished_at, started_at), 1, 10) <= ? "
            "order by coalesce(finished_at, started_at) desc, id desc limit 1",
            [fund, *statuses, day.isoformat()]).fetchone()
        return _snapshot(row) if row else None

    def progress(self, snapshot_id: int, fresh_since: datetime) -> tuple[int, int]:
        """Return how many of a snapshot's members have a reading so far, and how many it has."""
        done, total = self.db.execute(
            "select sum(case when r.fetched_at >= ? then 1 else 0 end), count(*) from fragility_members m "
            "left join member_net_income r on r.yahoo = m.yahoo where m.snapshot_id = ?",
            [_iso(fresh_since), snapshot_id]).fetchone()
        return int(done or 0), int(total or 0)

    def start(self, fund: str, holdings_as_of: date, members: Iterable[tuple[str, str, str, float]],
              now: datetime) -> int:
        """Record a new running snapshot and its members (ticker, yahoo, name, weight) in one transaction."""
        with self.store.transaction():
            cursor = self.db.execute(
                "insert into fragility_snapshots (fund, started_at, holdings_as_of, status) values (?,?,?,'running')",
                [fund, _iso(now), holdings_as_of.isoformat()])
            snapshot_id = cursor.lastrowid
            assert snapshot_id is not None  # sqlite3 sets it after every insert
            self.db.conn.executemany(
                "insert into fragility_members (snapshot_id, ticker, yahoo, name, weight_pct, attempts) "
                "values (?,?,?,?,?,0)", [(snapshot_id, t, y, n, w) for t, y, n, w in members])
        return snapshot_id

    def pending(self, snapshot_id: int, fresh_since: datetime, max_attempts: int) -> list[PendingMember]:
        """Return the members without a reading since `fresh_since` and tries left, heaviest first."""
        rows = self.db.execute(
            "select m.ticker, m.yahoo, m.weight_pct, m.attempts from fragility_members m "
            "left join member_net_income r on r.yahoo = m.yahoo "
            "where m.snapshot_id = ? and m.attempts < ? and (r.fetched_at is null or r.fetched_at < ?) "
            "order by m.weight_pct desc, m.ticker", [snapshot_id, max_attempts, _iso(fresh_since)]).fetchall()
        return [PendingMember(t, y, w, a) for t, y, w, a in rows]

    def record_reading(self, yahoo: str, net_income: float | None, as_of: date | None, source: str, problem: str,
                       now: datetime) -> None:
        """Keep a member's newest reading (or why there is none) with its fetch time."""
        with self.store.transaction():
            self.db.execute(
                "insert into member_net_income (yahoo, net_income, as_of, source, problem, fetched_at) "
                "values (?,?,?,?,?,?) on conflict(yahoo) do update set net_income = excluded.net_income, "
                "as_of = excluded.as_of, source = excluded.source, problem = excluded.problem, "
                "fetched_at = excluded.fetched_at",
                [yahoo, net_income, as_of.isoformat() if as_of else None, source, problem[:300], _iso(now)])

    def record_failure(self, snapshot_id: int, ticker: str, error: str) -> None:
        """Count a failed try to read a member in this snapshot."""
        with self.store.transaction():
            self.db.execute("update fragility_members set attempts = attempts + 1, last_error = ? "
                            "where snapshot_id = ? and ticker = ?", [error[:300], snapshot_id, ticker])

    def incomes(self, snapshot_id: int, fresh_since: datetime, oldest_period: date) -> list[MemberIncome]:
        """Return every member with its reading; a reading older than `fresh_since` or a period before
        `oldest_period` counts as no data."""
        rows = self.db.execute(
            "select m.ticker, m.weight_pct, m.last_error, r.net_income, r.as_of, r.source, r.problem, r.fetched_at "
            "from fragility_members m left join member_net_income r on r.yahoo = m.yahoo "
            "where m.snapshot_id = ? order by m.weight_pct desc, m.ticker", [snapshot_id]).fetchall()
        out = []
        for ticker, weight, error, income, as_of, source, problem, fetched in rows:
            period = date.fromisoformat(as_of) if as_of else None
            if fetched is None or fetched < _iso(fresh_since):
                out.append(MemberIncome(ticker, weight, None, problem=f"not read: {error}" if error else "not read"))
            elif income is None:
                out.append(MemberIncome(ticker, weight, None, problem=problem or "no figure"))
            elif period is None or period < oldest_period:
                out.append(MemberIncome(ticker, weight, None, period, source,
                                        f"newest figure runs to {period}: too old to count"))
            else:
                out.append(MemberIncome(ticker, weight, income, period, source))
        return out

    def finish(self, snapshot_id: int, figures: FragilityFigures, status: str, note: str, now: datetime) -> Snapshot:
        """Record a snapshot's tally and whether it is complete; return it."""
        with self.store.transaction():
            self.db.execute(
                "update fragility_snapshots set finished_at = ?, status = ?, members = ?, covered = ?, "
                "unprofitable = ?, unprofitable_pct_count = ?, unprofitable_pct_weight = ?, coverage_pct_weight = ?, "
                "note = ? where id = ?",
                [_iso(now), status, figures.members, figures.covered, figures.unprofitable,
                 figures.unprofitable_pct_count, figures.unprofitable_pct_weight, figures.coverage_pct_weight,
                 note[:1000], snapshot_id])
        row = self.db.execute(f"select {_COLUMNS} from fragility_snapshots where id = ?", [snapshot_id]).fetchone()
        return _snapshot(row)

    def imported(self, fund: str) -> list[Snapshot]:
        """Return the fund's imported snapshots, oldest first."""
        rows = self.db.execute(f"select {_COLUMNS} from fragility_snapshots where fund = ? and status = 'imported' "
                               "order by finished_at", [fund]).fetchall()
        return [_snapshot(row) for row in rows]

    def record_imported(self, fund: str, rows: Iterable[tuple[date, float, float | None, float | None]],
                        now: datetime) -> int:
        """Keep history from a CSV as imported snapshots (day, pct by count, pct by weight, coverage); skip known days."""
        known = {r[0] for r in self.db.execute(
            "select substr(finished_at, 1, 10) from fragility_snapshots where fund = ? and status = 'imported'",
            [fund]).fetchall()}
        fresh = [r for r in rows if r[0].isoformat() not in known]
        with self.store.transaction():
            self.db.conn.executemany(
                "insert into fragility_snapshots (fund, started_at, finished_at, status, unprofitable_pct_count, "
                "unprofitable_pct_weight, coverage_pct_weight, note) values (?,?,?,'imported',?,?,?,?)",
                [(fund, _iso(_midnight(day)), _iso(_midnight(day)), count, weight, coverage, f"imported {_iso(now)}")
                 for day, count, weight, coverage in fresh])
        return len(fresh)


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
