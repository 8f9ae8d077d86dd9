"""Print a backtest's result as rich tables in the terminal."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from alerts.comovement import CoMovement
from alerts.significance import MIN_SIGNALS
from alerts.study import Study
from bot.backtest.run import BacktestResult
from bot.backtest.table import Row, print_table
from bot.backtest.words import by_label, corr, p_words, pct, what_happened

if TYPE_CHECKING:  # the sweep is loaded only by --sweep
    from alerts.sweep import Sweep


def _console(console: Any) -> Any:
    from rich.console import Console

    if console is None:
        console = Console()
        if not console.is_terminal:  # piped to a file or pager: wide enough that no figure is cut
            # Without colours, highlighting numbers and brackets would show nothing (~20 ms of regexes).
            console = Console(width=150, highlight=False) if console.color_system is None else Console(width=150)
        # Read once: a console without a set height asks the system for the terminal's size (three calls, each
        # an error when piped) every time a line or a table cell is measured, ~250 times a report.
        console.size = console.size
    return console


def print_report(result: BacktestResult, console: Any = None, alert_list: bool = False) -> None:
    """Print the answer first (claims, verdicts, sweep, lead/lag), then the study tables; alerts when asked."""
    console = _console(console)
    with console:  # one write at the end, not a write and a flush for each of ~100 prints
        _print_report(result, console, alert_list)


def _print_report(result: BacktestResult, console: Any, alert_list: bool) -> None:
    span = ", ".join(f"{s.symbol} {s.first}→{s.last}" for s in result.spans)
    console.print(f"[bold]riskon backtest[/bold] · {result.config_path} · data: {result.source}")
    console.print(f"history: {span}")
    console.print(f"{result.bar_count:,} bars, {len(result.alerts)} alerts, {len(result.signals)} leader signal "
                  f"episodes in {result.seconds:.1f} s")
    for problem in result.problems[:SHOWN_NOTES]:
        console.print(f"[yellow]note:[/yellow] {problem}", highlight=False)
    if len(result.problems) > SHOWN_NOTES:
        console.print(f"[yellow]note:[/yellow] … and {len(result.problems) - SHOWN_NOTES} more notes on the input "
                      "(all of them in --json and the HTML report)")
    _print_claims(result, console)
    _print_verdicts(result, console)
    if result.sweep is not None:
        print_sweep(result.sweep, console)
    _print_lead_lag(result, console)
    _print_coverage(result, console)
    _print_study(result, console, each_signal=alert_list)
    _print_comovement(result, console)
    if alert_list:
        from rich.table import Table

        table = Table(title=f"Alerts the configured rules would have fired ({len(result.alerts)})", title_justify="left")
        for column in ("date", "rule", "symbol", "what", "figures"):
            table.add_column(column, overflow="fold")
        for event in result.alerts:
            head, detail = what_happened(event)
            table.add_row(f"{event.bar_time:%Y-%m-%d}", event.rule_id, event.symbol, head, detail)
        console.print(table)
    else:
        console.print(f"\n{len(result.alerts)} alerts and each signal's returns: --alerts, or --csv/--json/--html.")


SHOWN_NOTES = 5  # the answer comes first: the rest of the input notes are in the files


VERDICT_STYLE = {"holds": "green", "partly": "yellow", "does not hold": "red", "cannot be checked": "dim"}


def _print_claims(result: BacktestResult, console: Any) -> None:
    if not result.claims:
        return
    console.print("\n[bold]The article's claims, checked against this history[/bold]")
    for claim in result.claims:
        style = VERDICT_STYLE.get(claim.verdict, "")
        console.print(f"[{style}]{claim.verdict.upper()}[/{style}]  {claim.title}: {claim.summary}" if style else
                      f"{claim.verdict.upper()}  {claim.title}: {claim.summary}", highlight=False)
        console.print(f"    claim: \"{claim.quote}\"", highlight=False, style="dim")
        for line in claim.numbers:
            console.print(f"    · {line}", highlight=False)


def _print_verdicts(result: BacktestResult, console: Any) -> None:
    """Print one line per signal and follower: per horizon the verdict, the effect, its interval and p."""
    if not result.studies:
        return
    columns = [("signal", "left"), ("follower", "left"), ("n", "right")] + [(f"+{h}d", "left") for h in result.horizons]
    rows: list[Row] = []
    for label, studies in by_label(result.studies).items():
        for index, study in enumerate(studies):
            if study.skipped == len(study.signals):
                continue
            cells = []
            for h in result.horizons:
                row = next((r for r in study.rows if r.horizon == h), None)
                test = row.test if row else None
                if test is None or test.p_value is None:
                    cells.append("too few" if test is not None and test.verdict == "too few signals" else "–")
                    continue
                short = {"better than chance": "BETTER", "worse than chance": "WORSE"}.get(test.verdict, "no evidence")
                cells.append(f"{short} {test.effect:+.1f} p {p_words(test.p_value)}")
            counted = len(study.signals) - study.skipped
            rows.append(Row((label if index == 0 else "", study.follower, str(counted), *cells),
                            end_section=index == len(studies) - 1))
    console.print()
    print_table(console, "At a glance: after each signal, did the follower do better than random days of the same "
                "years?", columns, rows, no_wrap=[True, True] + [False] * (len(columns) - 2))
    console.print(f"  effect: the signals' median return minus every start day's, in points; p: how often the same "
                  f"signals moved to other days did as well (rotation test); a verdict needs p < 0.05 and n >= "
                  f"{MIN_SIGNALS}, else 'no evidence' or 'too few'. Intervals: the study tables below, and the HTML.",
                  highlight=False)


def print_sweep(sweep: Sweep, console: Any = None, top: int = 15) -> None:
    """Print the sweep's best rows, its correction and the luck warning."""
    from rich.table import Table

    console = _console(console)
    tested = [r for r in sweep.rows if r.p_value is not None]
    table = Table(title=f"Sweep: {sweep.combinations} combinations of " + "; ".join(
        f"{key}={','.join(values)}" for key, values in sweep.grid) + f" in {sweep.seconds:.1f} s "
        f"({sweep.workers} processes). Best {min(top, len(tested))} of {sweep.tests} tests; q: "
        f"{sweep.correction} adjusted p", title_justify="left")
    for column in ("parameters", "signal", "follower", "after", "n", "effect", "p", "q", "verdict"):
        table.add_column(column, justify="right" if column in ("n", "effect", "p", "q", "after") else "left")
    for row in tested[:top]:
        table.add_row(row.label, row.signal, row.follower, f"+{row.horizon}d", str(row.n),
                      "–" if row.effect is None else f"{row.effect:+.1f}", p_words(row.p_value),
                      p_words(row.q_value), row.verdict)
    console.print()
    console.print(table)
    untested = len(sweep.rows) - len(tested)
    if untested:
        console.print(f"  {untested} rows had too few signals for a test (in the CSV/JSON/HTML).")
    console.print(f"  [bold]{sweep.warning()}[/bold]", highlight=False)


def _print_lead_lag(result: BacktestResult, console: Any) -> None:
    if not result.lead_lags:
        return
    console.print("\n[bold]Lead and lag[/bold]: correlation of the leader's return with the follower's return k days "
                  "later (k = -30..+30; k > 0: the leader moves first); r(0): same days")
    for item in result.lead_lags:
        same = item.peak("same")
        line = f"  {item.leader} → {item.follower}, {'daily' if item.period == 'day' else 'weekly'}: {item.reading()}"
        if same:
            line += f"; r(0) {same[1]:+.2f}"
        for name, values in item.since:
            at0 = dict(zip(item.lags, values)).get(0)
            if at0 is not None:
                line += f", {name} {at0:+.2f}"
        console.print(line, highlight=False)


def _print_coverage(result: BacktestResult, console: Any) -> None:
    lines = []
    for rule in result.coverage:
        if not rule.evaluated:
            why = "; ".join(f"{s}: {w}" for s, w in rule.skipped)
            lines.append(f"  {rule.rule_id} ({rule.kind}) was never evaluated: {why}")
        elif rule.skipped:
            lines.append(f"  {rule.rule_id} ({rule.kind}) not on " + "; ".join(f"{s}: {w}" for s, w in rule.skipped))
    if lines:
        console.print("\n[bold]Rules this history could not fully test[/bold]")
        for line in lines:
            console.print(line, highlight=False)


def _print_study(result: BacktestResult, console: Any, each_signal: bool = False) -> None:
    if not result.studies:
        console.print("\nEvent study: no leader signals" + (" (no followers configured)" if not result.followers else ""))
        return
    console.print(f"\n[bold]Event study[/bold]: follower returns after each leader signal episode (alerts "
                  f"{result.episode_gap_days} days apart or more start a new episode), beside all start days of "
                  "the same years (baseline).")
    columns = [("follower", "left")] + [(name, "right") for name in (
        "after", "n", "median", "mean", "up", "worst", "best", "base n", "base\nmedian", "base\nup", "effect", "p",
        "own\nhigh", "own\nflip", "not\nyet")]
    for label, studies in by_label(result.studies).items():
        rows: list[Row] = []
        for study in studies:
            if study.skipped == len(study.signals):
                continue  # no signal while this follower traded: said in the line under the table
            for index, row in enumerate(study.rows):
                s, b = row.signals, row.baseline
                rows.append(Row((
                    study.follower if index == 0 else "", f"+{row.horizon}d", str(s.count), pct(s.median),
                    pct(s.mean), pct(s.share_positive, False), pct(s.worst), pct(s.best), f"{b.count:,}", pct(b.median),
                    pct(b.share_positive, False),
                    "–" if row.test is None or row.test.effect is None else f"{row.test.effect:+.1f}",
                    p_words(row.test.p_value if row.test else None), f"{row.ath_within}",
                    "–" if row.flip_within is None else f"{row.flip_within}", f"{row.not_yet}" if row.not_yet else "",
                ), end_section=index == len(study.rows) - 1))
        print_table(console, label, columns, rows, no_wrap=True)
        first = studies[0]
        console.print(f"  {len(first.signals)} signal episodes; "
                      + "; ".join(f"{s.follower}: {len(s.signals) - s.skipped} while it traded, baseline years "
                                  f"{s.baseline_years[0]}–{s.baseline_years[1]}" if s.baseline_years
                                  else f"{s.follower}: none while it traded" for s in studies))
        if each_signal:
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
    if not result.comovements:
        return
    console.print("\n[bold]Co-movement[/bold]: correlation of daily returns, taken on the leader's trading days "
                  "(a follower's Monday return spans the weekend).")
    by_leader: dict[str, list[CoMovement]] = {}
    for move in result.comovements:
        by_leader.setdefault(move.leader, []).append(move)
    for leader, moves in by_leader.items():
        columns = [("year", "left")]
        for move in moves:
            columns += [(f"{move.follower}\ndays", "right"), (f"{move.follower}\nyear", "right")]
            columns += [(f"{move.follower}\n{w}d avg", "right") for w in move.windows]
        rows = []
        years = sorted({y.year for m in moves for y in m.years})
        for year in years:
            cells = [str(year)]
            for move in moves:
                row = next((y for y in move.years if y.year == year), None)
                if row is None:
                    cells += [""] * (2 + len(move.windows))
                else:
                    cells += [str(row.days), corr(row.correlation)] + [corr(v) for v in row.mean_rolling]
            rows.append(Row(tuple(cells)))
        rows.append(Row(("all", *[c for m in moves for c in (str(m.days), corr(m.overall), *[""] * len(m.windows))]),
                        style="bold"))
        print_table(console, f"with {leader}, by year", columns, rows)
