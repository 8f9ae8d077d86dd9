"""The `riskon` command line: run, replay, check-config (and backtest)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from alerts.errors import RiskonError
from bot import __version__
from bot.collector import batch_collection, built_to_keep

if TYPE_CHECKING:
    from bot.config import Config

EXIT_OK, EXIT_ERROR, EXIT_CONFIG = 0, 1, 2
EXIT_INTERRUPTED = 130  # stopped by Ctrl-C (or SIGTERM, SIGHUP) before it was done, as a shell reports a SIGINT
DEFAULT_CONFIG = "config.yaml"


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date; use YYYY-MM-DD") from None


def _speed(text: str) -> float:
    if text == "max":
        return 0.0
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a speed; use a number of bars per second or 'max'") from None
    if not value > 0:  # also refuses nan, which no comparison admits
        raise argparse.ArgumentTypeError("speed must be above 0 bars per second (or 'max')")
    return 1.0 / value


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser for every subcommand."""
    parser = argparse.ArgumentParser(
        prog="riskon",
        description="Real-time alerts when small caps signal risk-on, and whether crypto follows.",
        epilog="Run 'riskon COMMAND --help' for a command's options. Secrets (bot tokens) come from "
        "environment variables named in config.yaml as ${NAME}.",
    )
    parser.add_argument("--version", action="version", version=f"riskon {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="run the live bot", description="Poll the configured feeds, evaluate the rules "
                         "and deliver alerts until stopped (Ctrl-C or SIGTERM).")
    run.add_argument("--config", default=DEFAULT_CONFIG, help="config file (default: %(default)s)")
    run.add_argument("--rehearse", metavar="DIR", help="rehearse on real history: replay a folder of daily CSVs as "
                     "if live, alerts to the configured chats marked as a rehearsal, commands answering with the "
                     "replayed market; keeps running after the last day until stopped. Uses its own database "
                     "beside the live one, with the live one's subscriptions copied in")
    run.add_argument("--from", dest="start", type=_day, metavar="DATE",
                     help="with --rehearse: first day that is news (default: 90 days before the data ends)")
    run.add_argument("--speed", type=_speed, default=None, metavar="N|max",
                     help="with --rehearse: market days per second, or 'max' (default: 1)")
    _logging_options(run)

    replay = sub.add_parser(
        "replay", help="feed history through the bot bar by bar",
        description="Replay a folder of daily CSVs (date,open,high,low,close,volume; one file per symbol) through "
        "the same engine, storage and notifiers as 'run', printing each alert as it is delivered. "
        "Alerts go to the console only, never to chats. A second replay on the same database prints nothing new.",
    )
    replay.add_argument("--data", required=True, metavar="DIR", help="folder of CSV files, one per symbol")
    replay.add_argument("--from", dest="start", type=_day, metavar="DATE",
                        help="first day that counts as news; earlier bars only warm up the rules")
    replay.add_argument("--to", dest="end", type=_day, metavar="DATE", help="last day to replay")
    replay.add_argument("--speed", type=_speed, default=0.0, metavar="N|max",
                        help="market days per second, or 'max' (default: max)")
    replay.add_argument("--db", default="replay.db", metavar="PATH",
                        help="database for the replay, kept apart from the live one (default: %(default)s)")
    replay.add_argument("--config", default=DEFAULT_CONFIG, help="config file for symbols and rules (default: %(default)s)")
    _logging_options(replay)

    test = sub.add_parser(
        "send-test", help="send a test alert to every subscribed chat",
        description="Send a clearly-marked test alert, with a chart, to every subscribed chat of every configured "
        "channel (or one), and print per chat whether it was sent, rate-limited, forbidden or the chat is gone, in "
        "the service's own words. Exits 1 when any send failed or nothing was sent. Records nothing in the alert "
        "log, and does not take chat commands: it can run beside the live bot.",
    )
    test.add_argument("--config", default=DEFAULT_CONFIG, help="config file (default: %(default)s)")
    test.add_argument("--channel", metavar="NAME", help="only this channel: telegram, discord, discord_webhook, console")
    _logging_options(test, default="WARNING")

    check = sub.add_parser("check-config", help="validate a config file and summarise it",
                           description="Validate a config file: print a summary and exit 0, or every problem "
                           "with its key path and line and exit 2. Nothing is written.")
    check.add_argument("path", nargs="?", default=DEFAULT_CONFIG, help="config file (default: %(default)s)")

    # Only the options: the backtest's own code (numpy, pandas) loads when a backtest runs.
    from bot.backtest.command import add_backtest_parser

    add_backtest_parser(sub)
    return parser


def _logging_options(parser: argparse.ArgumentParser, default: str = "INFO") -> None:
    parser.add_argument("--log-level", default=default, choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="log detail on stderr (default: %(default)s)")
    parser.add_argument("--json-logs", action="store_true", help="log one JSON object per line")


def summarize_config(config: Config) -> str:
    """Render a one-screen summary of a valid config, hidden characters escaped."""
    from bot.config import escape_hidden

    lines = [f"config OK: {config.source_path or 'config'}", f"storage: {config.storage.path}", "", "feeds:"]
    for name, feed in config.feeds.items():
        served = [s.id for s in config.symbols if s.feed == name]
        lines.append(f"  {name} ({feed.kind}, every {feed.every_seconds:g}s): {', '.join(served) or 'no symbols'}")
    lines += ["", f"symbols ({len(config.symbols)}):"]
    for s in config.symbols:
        lines.append(f"  {s.id:<8} {s.asset_class:<9} from {s.feed}" + (f" as {s.source}" if s.source else ""))
    lines += ["", f"rules ({len(config.rules)}):"]
    for rule, cfg in config.build_rules():
        lines.append(f"  {cfg.id}: {rule.describe(cfg.symbols)}")
    for cfg in config.rules:
        if not cfg.enabled:
            lines.append(f"  {cfg.id}: disabled")
    channels = [name for name, settings in config.channels.items()] or ["console (default)"]
    lines += ["", f"channels: {', '.join(channels)}"]
    # Names come from the file: a right-to-left override or a terminal escape in one must not act on the screen.
    return "\n".join(escape_hidden(line) for line in lines)


def cmd_check_config(args: argparse.Namespace) -> int:
    """Validate a config file."""
    # Loading pydantic and the config's models makes hundreds of thousands of objects that live to the end: built
    # with the collector off (it walked them some 60 times, ~12 ms), then handed back for an in-process caller.
    with batch_collection():
        with built_to_keep():
            from bot.config import load_config

            config = load_config(args.path)
        print(summarize_config(config))
    return EXIT_OK


def cmd_send_test(args: argparse.Namespace) -> int:
    """Send a test alert to every subscribed chat and report each outcome."""
    import asyncio

    from bot.config import load_config
    from bot.logs import setup_logging
    from bot.runtime import Runtime
    from bot.send_test import send_test
    from bot.serving import secrets_of
    from storage import Store

    config = load_config(args.config)
    setup_logging(args.log_level, args.json_logs, secrets_of(config))
    store = Store.open(config.storage.path, busy_timeout=config.storage.busy_timeout_seconds)

    async def main() -> list:
        return await send_test(Runtime(config, store, feeds={}), args.channel)

    try:
        results = asyncio.run(main())
    finally:
        store.close()
    failed = [r for r in results if not r.ok]
    if not results:
        print("nothing was sent: no configured channel has a subscribed chat")
        return EXIT_ERROR
    print(f"{len(results) - len(failed)} of {len(results)} test message(s) sent" + (
        f"; {len(failed)} failed" if failed else ""))
    return EXIT_ERROR if failed else EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    """Run the live bot until a signal arrives."""
    import asyncio
    import logging

    from bot.config import load_config
    from bot.logs import setup_logging
    from bot.memory import limit_arenas
    from bot.runtime import Runtime
    from bot.scheduler import Scheduler
    from bot.serving import secrets_of, serve
    from storage import Store

    log = logging.getLogger("riskon")
    limit_arenas()  # before any thread starts: a long run should not keep a malloc arena per worker thread
    if args.rehearse is None and (args.start is not None or args.speed is not None):
        raise RiskonError("--from and --speed go with --rehearse DIR (riskon run --rehearse DIR --from DATE)")
    config = load_config(args.config)
    setup_logging(args.log_level, args.json_logs, secrets_of(config))
    if args.rehearse is not None:
        from bot.rehearsal import rehearse

        rehearse(config, args.rehearse, args.start, 1.0 if args.speed is None else args.speed)
        log.info("riskon stopped")
        return EXIT_OK
    store = Store.open(config.storage.path, busy_timeout=config.storage.busy_timeout_seconds)

    async def main() -> None:
        runtime = Runtime(config, store, database_thread=True)
        log.info("riskon %s watching %d symbols with %d rules; database %s", __version__, len(config.symbols),
                 len(config.rules), config.storage.path)
        await serve(runtime, Scheduler(runtime))

    try:
        asyncio.run(main())
    finally:
        store.close()
    log.info("riskon stopped")
    return EXIT_OK


def cmd_replay(args: argparse.Namespace) -> int:
    """Replay history through the live pipeline and summarise it."""
    with batch_collection():
        return _run_replay(args)


def _run_replay(args: argparse.Namespace) -> int:
    """Load the config and history, replay it and print the summary."""
    # What is built before the first day (modules, config, history) lives to the end: built with the collector off.
    with built_to_keep():
        import asyncio

        from bot.config import load_config
        from bot.logs import setup_logging
        from bot.replay_loop import ReplayLoop
        from bot.runtime import Runtime
        from bot.serving import other_feeds, replay_config, serve
        from storage import Store
        from storage.base import STORE_ERRORS

        if not Path(args.data).is_dir():
            raise RiskonError(f"--data {args.data}: no such folder")
        if args.start and args.end and args.start > args.end:
            raise RiskonError(f"--from {args.start} is after --to {args.end}: no day would count as news")
        original = load_config(args.config)
        config = replay_config(original, args.data, args.start, args.end)
        setup_logging(args.log_level, args.json_logs)
    # A replay re-creates history: it needs no fsync per commit (the live bot's database keeps it).
    store = Store.open(args.db, durable=False)
    chats = [s for s in store.active_subscriptions() if s.channel != "console"]
    if chats:
        # Its alerts would wait there for those chats, and the live bot would send them all at its next start.
        store.close()
        raise RiskonError(f"--db {args.db} holds {len(chats)} chat subscription(s), as the live bot's database does: "
                          "a replay there would leave every replayed alert waiting for those chats. Use another "
                          "--db (default: replay.db)")
    started = time.perf_counter()
    summary: dict = {}

    async def main() -> None:
        from bot.feeds.replay import ReplayFeed, ReplaySettings

        replay = ReplayFeed("replay", ReplaySettings(**config.feeds["replay"].settings), config.symbols)
        with built_to_keep():
            replay.load()
        problem = replay.span_problem(args.start, args.end)
        if problem:
            raise RiskonError(f"--data {args.data}: {problem}")
        from bot.feeds.flow_history import load_flow_history

        # Fund flows over history, derived from the data folder's shares files as the live feed does.
        flows = load_flow_history(args.data, original.feeds, replay.closes)
        flows.store_into(store, replay.clock())
        summary["flows"] = flows.coverage(original.rules)
        runtime = Runtime(config, store, clock=replay.clock, live_since=replay.live_since(),
                          feeds={"replay": replay, **{n: f for n, f in other_feeds(config, store).items()}})
        loop = ReplayLoop(runtime, seconds_per_day=args.speed)
        await serve(runtime, loop)
        summary["failure"] = loop.failure
        summary["fired"] = runtime.engine.fired
        summary["bars"] = runtime.bars_processed
        summary["outbox"] = store.outbox_counts()
        # The last day served, where the console lost its reader (`riskon replay | head`), else None.
        summary["output_closed_after"] = replay.last_day_served if loop.output_closed else None
        summary["stopped_after"] = None if loop.finished_replay else replay.last_day_served

    try:
        asyncio.run(main())
    except STORE_ERRORS as exc:
        raise RiskonError(f"replay stopped before its last day: database {args.db}: {type(exc).__name__}: {exc}"
                          ) from None
    finally:
        store.close()
    if summary.get("failure"):
        raise RiskonError(f"replay stopped before its last day: database {args.db}: {summary['failure']}")
    if summary.get("output_closed_after") is not None:
        # `riskon replay | head`: the reader has what it wanted, which is not an error (as in main()).
        import logging

        outbox = summary["outbox"]
        logging.getLogger("riskon.replay").info(
            "stdout was closed: replay stopped at %s; %d alert(s) not printed wait in %s for the next replay on it",
            summary["output_closed_after"], outbox.get("pending", 0) + outbox.get("retrying", 0), args.db)
        return _reader_gone()
    _print_replay_summary(summary, time.perf_counter() - started)
    if summary.get("stopped_after") is not None:
        print(f"  run it again on {args.db} to go on from there")
        return EXIT_INTERRUPTED
    return EXIT_OK


def _reader_gone() -> int:
    """Point stdout at devnull once its reader closed the pipe, and return success: the reader has what it wanted."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the interpreter's flush at exit must not raise
    return EXIT_OK


def _print_replay_summary(summary: dict, seconds: float) -> None:
    fired: Counter = summary.get("fired", Counter())
    bars = summary.get("bars", 0)
    stopped = summary.get("stopped_after")
    print("─" * 60)
    # A replay stopped by a signal says so: "done" read as if the data had ended there.
    ended = f"replay stopped after {stopped} (before the end of the data)" if stopped is not None else "replay done"
    print(f"{ended}: {bars:,} bars in {seconds:.1f} s ({bars / max(seconds, 1e-9):,.0f} bars/s), "
          f"{sum(fired.values())} new alert(s)")
    if fired:
        width = max(len(rule) for rule, _ in fired) + 2
        for (rule, symbol), count in sorted(fired.items()):
            print(f"  {rule:<{width}} {symbol:<8} {count}")
    else:
        print("  no new alerts (already recorded in this database, or none in the data)")
    for line in summary.get("flows", ()):
        print(f"  flows: {line}")
    outbox = summary.get("outbox", {})
    if outbox.get("pending") or outbox.get("retrying") or outbox.get("failed"):
        print(f"  deliveries not completed: {outbox}")


COMMANDS = {"run": cmd_run, "replay": cmd_replay, "check-config": cmd_check_config, "send-test": cmd_send_test}


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, run a command, and map known errors to exit codes."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return EXIT_CONFIG
    handler = COMMANDS.get(args.command) or getattr(args, "handler", None)
    if handler is None:  # argparse refuses unknown commands; a subparser without a handler is a bug
        parser.print_help()
        return EXIT_CONFIG
    try:
        return handler(args)
    except RiskonError as exc:
        # Loaded here, not at the top: --help and --version need no config code (a command that read one has it).
        from bot.config import ConfigError

        if not isinstance(exc, ConfigError):
            print(f"riskon: {exc}", file=sys.stderr)
            return EXIT_ERROR
        print(f"riskon: invalid config ({len(exc.problems)} problem{'s' if len(exc.problems) != 1 else ''}):",
              file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `riskon check-config | head` closed the pipe: the reader has what it wanted, which is not an error.
        return _reader_gone()
