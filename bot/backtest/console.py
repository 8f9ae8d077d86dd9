"""Print a backtest's result as rich tables in the terminal."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from alerts.comovement import CoMovement
from alerts.study import Study
from bot.backtest.run import BacktestResult
from bot.backtest.words import corr, pct, study_label, what_happened


def print_report(result: BacktestResult, console: Any = None, alert_list: bool = True) -> None:
    """Print the alert list, the event study and the co-movement as rich tables."""
    from rich.console import Console
    from rich.table import Table

    if console is None:
        console = Console()
        if not console.is_terminal:  # piped to a file or pager: wide enough that no figure is cut
            console = Console(width=140)
    span = ", ".join(f"{s.symbol} {s.first}→{s.last}" for s in result.spans)
    console.print(f"[bold]riskon backtest[/bold] · {result.config_path} · data: {result.source}")
    console.print(f"history: {span}")
    console.print(f"{result.bar_count:,} bars, {len(result.alerts)} alerts, {len(result.signals)} leader signal "
                  f"episodes in {result.seconds:.1f} s")
    for problem in result.problems:
        console.print(f"[yellow]note:[/yellow] {problem}")
    if alert_list:
        table = Table(title=f"Alerts the configured rules would have fired ({len(result.alerts)})", title_justify="left")
        for column in ("date", "rule", "symbol", "what", "figures"):
            table.add_column(column, overflow="fold")
        for event in result.alerts:
            head, detail = what_happened(event)
            table.add_row(f"{event.bar_time:%Y-%m-%d}", event.rule_id, event.symbol, head, detail)
        console.print(table)
    _print_study(result, console)
    _print_comovement(result, console)


def _print_study(result: BacktestResult, console: Any) -> None:
    from rich.table import Table

    if not result.studies:
        console.print("\nEvent study: no leader signals" + (" (no followers configured)" if not result.followers else ""))
        return
    console.print(f"\n[bold]Event study[/bold]: follower returns after each leader signal episode (alerts "
                  f"{result.episode_gap_days} days apart or more start a new episode), beside all start days of "
                  "the same years (baseline).")
    by_label: dict[str, list[Study]] = {}
    for study in result.studies:
        by_label.setdefault(study_label(study), []).append(study)
    for label, studies in by_label.items():
        table = Table(title=label, title_justify="left", show_lines=False)
        for column in ("follower", "after", "n", "median", "mean", "up", "worst", "best",
                       "base n", "base median", "base up", "own high", "own flip", "not yet"):
            table.add_column(column, justify="right" if column not in ("follower",) else "left", no_wrap=True)
        for study in studies:
            if study.skipped == len(study.signals):
                continue  # no signal while this follower traded: said in the line under the table
            for index, row in enumerate(study.rows):
                s, b = row.signals, row.baseline
                table.add_row(
                    study.follower if index == 0 else "", f"+{row.horizon}d", str(s.count), pct(s.median),
                    pct(s.mean), pct(s.share_positive, False), pct(s.worst), pct(s.best), f"{b.count:,}", pct(b.median),
                    pct(b.share_positive, False), f"{row.ath_within}",
                    "–" if row.flip_within is None else f"{row.flip_within}", f"{row.not_yet}" if row.not_yet else "",
                    end_section=index == len(study.rows) - 1,
                )
        console.print(table)
        first = studies[0]
        console.print(f"  {len(first.signals)} signal episodes; "
                      + "; ".join(f"{s.follower}: {len(s.signals) - s.skipped} while it traded, baseline years "
                                  f"{s.baseline_years[0]}–{s.baseline_years[1]}" if s.baseline_years
                                  else f"{s.follower}: none while it traded" for s in studies))
        _print_signals(studies, result.horizons, console)


def _print_signals(studies: list[Study], horizons: Sequence[int], console: Any) -> None:
    from rich.table import Table

    for first in range(0, len(studies), 2):  # two followers per table keeps a row on one line
        chunk = studies[first:first + 2]
        table = Table(title=f"each signal: {', '.join(s.follower for s in chunk)} (high: days to the follower's first "
                      "close above all its earlier ones; flip: to its own resistance flip)", title_justify="left",
                      show_header=True)
        table.add_column("signal", no_wrap=True)
        table.add_column("alerts", justify="right")
        for study in chunk:
            for h in horizons:
                table.add_column(f"{study.follower} +{h}d", justify="right", no_wrap=True)
            table.add_column(f"{study.follower} high", justify="right", no_wrap=True)
            if study.flips_watched:
                table.add_column(f"{study.follower} flip", justify="right", no_wrap=True)
        rows = 0
        for index, signal in enumerate(chunk[0].signals):
            if all((o := s.outcome(signal.day, horizons[0])) is None or o.status == "no_data" for s in chunk):
                continue
            cells = [str(signal.day), str(signal.alerts)]
            for study in chunk:
                for h in horizons:
                    outcome = study.outcome(signal.day, h)
                    cells.append("–" if outcome is None or outcome.status == "no_data" else
                                 "…" if outcome.status == "not_yet" else pct(outcome.return_pct))
                days = study.follower_ath_days[index] if index < len(study.follower_ath_days) else None
                cells.append(f"+{days}d" if days is not None else "")
                if study.flips_watched:
                    flip = study.follower_flip_days[index]
                    cells.append(f"+{flip}d" if flip is not None else "")
            table.add_row(*cells)
            rows += 1
        if rows:
            console.print(table)
    pending = sorted({(o.signal_day, o.horizon, o.needs_data_to) for s in studies for o in s.outcomes
                      if o.status == "not_yet"})
    for day, horizon, needed in pending:
        console.print(f"  … signal {day} +{horizon}d: not yet: needs data to {needed}")


def _print_comovement(result: BacktestResult, console: Any) -> None:
    from rich.table import Table

    if not result.comovements:
        return
    console.print("\n[bold]Co-movement[/bold]: correlation of daily returns, taken on the leader's trading days "
                  "(a follower's Monday return spans the weekend).")
    by_leader: dict[str, list[CoMovement]] = {}
    for move in result.comovements:
        by_leader.setdefault(move.leader, []).append(move)
    for leader, moves in by_leader.items():
        table = Table(title=f"with {leader}, by year", title_justify="left")
        table.add_column("year")
        for move in moves:
            table.add_column(f"{move.follower} days", justify="right")
            table.add_column(f"{move.follower} year", justify="right")
            for w in move.windows:
                table.add_column(f"{move.follower} {w}d avg", justify="right")
        years = sorted({y.year for m in moves for y in m.years})
        for year in years:
            cells = [str(year)]
            for move in moves:
                row = next((y for y in move.years if y.year == year), None)
                if row is None:
                    cells += [""] * (2 + len(move.windows))
                else:
                    cells += [str(row.days), corr(row.correlation)] + [corr(v) for v in row.mean_rolling]
            table.add_row(*cells)
        table.add_row("all", *[c for m in moves for c in (str(m.days), corr(m.overall), *[""] * len(m.windows))],
                      style="bold")
        console.print(table)
