"""The `riskon backtest` subcommand: its options, and running it."""

from __future__ import annotations

import argparse
import os
from datetime import date
from typing import Any, Callable, TypeVar

from bot.collector import batch_collection, built_to_keep

# alerts.study.DEFAULT_HORIZONS, written out: `riskon --help` must not import numpy to show it (a test compares).
DEFAULT_HORIZONS = (7, 30, 90, 180)
T = TypeVar("T")


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date; use YYYY-MM-DD") from None


def _horizons(text: str) -> tuple[int, ...]:
    try:
        values = tuple(sorted({int(part) for part in text.split(",") if part.strip()}))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a list of days; use e.g. 7,30,90,180") from None
    if not values or any(v <= 0 or v > 3650 for v in values):
        raise argparse.ArgumentTypeError("horizons must be whole days between 1 and 3650, e.g. 7,30,90,180")
    return values


def _symbols(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def add_backtest_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the `backtest` subcommand to the riskon command line."""
    parser = sub.add_parser(
        "backtest", help="run the rules over history and study what crypto did after each signal",
        description="Run the configured rules over history with the live bot's own engine and list every alert "
        "they would have fired; then the event study (followers' returns after each leader signal, beside the "
        "baseline of all days) and the co-movement of daily returns. Nothing is sent to any chat.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", metavar="DIR", help="folder of daily CSVs, one per symbol (file stem = csv name)")
    source.add_argument("--live", action="store_true", help="fetch the history through the configured feeds "
                        "(cached in --cache)")
    parser.add_argument("--from", dest="start", type=_day, metavar="DATE",
                        help="first day whose alerts count; earlier bars only warm up the rules")
    parser.add_argument("--to", dest="end", type=_day, metavar="DATE",
                        help="last day of data used (as if today were DATE)")
    parser.add_argument("--config", default="config.yaml", help="config file for symbols and rules (default: %(default)s)")
    parser.add_argument("--horizons", type=_horizons, default=DEFAULT_HORIZONS, metavar="DAYS",
                        help="forward horizons in calendar days (default: 7,30,90,180)")
    parser.add_argument("--episode-gap", type=int, default=30, metavar="DAYS",
                        help="alerts closer than this to the previous one join its episode; 0 studies every alert "
                        "(default: %(default)s)")
    parser.add_argument("--leaders", type=_symbols, metavar="SYMBOLS",
                        help="comma-separated leaders (default: every non-crypto symbol)")
    parser.add_argument("--followers", type=_symbols, metavar="SYMBOLS",
                        help="comma-separated followers (default: crypto and composite symbols, "
                        "except the members of a composite)")
    parser.add_argument("--csv", metavar="DIR", help="write alerts, signals, outcomes, study and co-movement CSVs here")
    parser.add_argument("--json", metavar="FILE", help="write the whole result as JSON")
    parser.add_argument("--html", metavar="FILE", help="write a self-contained HTML report with charts")
    parser.add_argument("--cache", default="backtest-cache.db", metavar="PATH",
                        help="bars cache for --live (default: %(default)s)")
    parser.add_argument("--alerts", action="store_true",
                        help="also print every alert and each signal's returns (they are always in --csv/--json/--html)")
    parser.add_argument("--no-alert-list", action="store_true", help=argparse.SUPPRESS)  # the default now
    parser.add_argument("--sweep", action="append", default=[], metavar="RULE.PARAM=V1,V2",
                        help="run the study for every combination of these rule parameters (repeatable), e.g. "
                        "--sweep smallcap_ath.rearm_pct=1,2,5 --sweep smallcap_flip.break_pct=0.25,0.5,1")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="processes for --sweep (default: one per CPU)")
    parser.set_defaults(handler=cmd_backtest)
    return parser


def cmd_backtest(args: argparse.Namespace) -> int:
    """Run a backtest from the command line and write what was asked."""
    # numpy's BLAS (OpenBLAS) starts a thread per core as numpy loads, and they spin waiting for work: about
    # 0.15 s of CPU taken from the backtest on two cores. Its only BLAS calls are dot products of a few thousand
    # daily returns, which OpenBLAS runs in one thread anyway (its threads start above 10,000), so no figure
    # changes. A user's own setting stands; a sweep's worker processes inherit it.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    # A backtest keeps what it builds (bars, events, closes: ~60,000 more objects the collector tracks) to its
    # end: the default thresholds ran ~350 collections here (0.13 s CPU of ~3), these ~25 (0.04 s).
    with batch_collection():
        return _run_backtest(args)


def _run_backtest(args: argparse.Namespace) -> int:
    """Load the config and history, backtest, and print and write the result."""
    # Modules, the config and the history live to the end: built with the collector off (its ~20 young collections
    # walked them only to find them alive, about 40 ms), then frozen out of later collections.
    with built_to_keep():
        history, config, grid = _load(args)
    # Imported here so that the options above load without numpy (riskon --help stays light); the sweep (with its
    # process pool), the files and the HTML report only when asked for.
    from bot.backtest.console import print_report
    from bot.backtest.run import backtest

    result = backtest(config, history, start=args.start, end=args.end, horizons=args.horizons,
                      episode_gap_days=args.episode_gap, leaders=args.leaders, followers=args.followers)
    if grid:
        from bot.backtest.sweep import run_sweep

        result.sweep = run_sweep(config, history, result, grid, args.workers)
    print_report(result, alert_list=args.alerts)
    if args.csv:
        from bot.backtest.export import write_csv

        paths = _written("--csv", args.csv, lambda: write_csv(result, args.csv))
        print(f"wrote {len(paths)} CSV files to {args.csv}")
    if args.json:
        from bot.backtest.export import write_json

        print(f"wrote {_written('--json', args.json, lambda: write_json(result, args.json))}")
    if args.html:
        from bot.backtest.report import write_html

        print(f"wrote {_written('--html', args.html, lambda: write_html(result, args.html))}")
    return 0


def _written(option: str, path: str, write: Callable[[], T]) -> T:
    """Write an output file; an OS refusal is a one-line error naming the option and the path."""
    from bot.backtest.history import BacktestError

    try:
        return write()
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename and str(exc.filename) != str(path) else ""
        raise BacktestError(f"{option} {path}: cannot write: {exc.strerror or exc}{where}") from None


def _load(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """Check the options, load the config (and the sweep's grid), then the history; return history, config, grid."""
    # The console report's modules come in here too: they are kept to the end like the rest.
    import bot.backtest.console  # noqa: F401
    from bot.backtest.history import BacktestError, fetch_live_history, load_csv_history
    from bot.config import load_config

    if args.episode_gap < 0:
        raise BacktestError("--episode-gap must be 0 or more days")
    if args.start and args.end and args.start > args.end:
        raise BacktestError(f"--from {args.start} is after --to {args.end}")
    if args.workers is not None and args.workers < 1:
        raise BacktestError("--workers must be 1 or more")
    config = load_config(args.config)
    grid = None
    if args.sweep:
        # Only a sweep needs it (it loads multiprocessing and pickle for its worker processes).
        from bot.backtest.sweep import parse_sweep

        grid = parse_sweep(config, args.sweep)
    if args.live:
        import asyncio  # only a live fetch needs it here: `riskon --help` reads this module's options

        history = asyncio.run(fetch_live_history(config, args.cache, args.end))
    else:
        history = load_csv_history(config, args.data, args.end)
    last = max((bars[-1].time.date() for bars in history.bars.values() if bars), default=None)
    if args.start and last is not None and args.start > last:
        # Else a whole report of "0 alerts, 0 leader signal episodes", as if the rules had found nothing.
        raise BacktestError(f"--from {args.start} is after the data's last day {last}: no alert could count")
    return history, config, grid
