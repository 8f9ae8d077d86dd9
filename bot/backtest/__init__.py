"""`riskon backtest`: the configured rules over history, the event study and co-movement, as tables and a report.

history.py loads the bars, replay.py runs the live Engine over them, run.py does the study, console.py,
export.py and report.py (with templates/report.html) show it, command.py is the subcommand.
"""

from bot.backtest.command import add_backtest_parser, cmd_backtest
from bot.backtest.console import print_report
from bot.backtest.export import to_json, write_csv, write_json
from bot.backtest.history import BacktestError, History, fetch_live_history, load_csv_history
from bot.backtest.replay import RuleRun, replay_rules, replay_rules_async
from bot.backtest.report import render_html, write_html
from bot.backtest.run import BacktestResult, SymbolSpan, backtest, choose_roles, composite_members

__all__ = [
    "BacktestError", "BacktestResult", "History", "RuleRun", "SymbolSpan", "add_backtest_parser", "backtest",
    "choose_roles", "cmd_backtest", "composite_members", "fetch_live_history", "load_csv_history", "print_report",
    "render_html", "replay_rules", "replay_rules_async", "to_json", "write_csv", "write_html", "write_json",
]
