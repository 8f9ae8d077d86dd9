"""`riskon backtest`: the configured rules over history, the event study and co-movement, as tables and a report.

history.py loads the bars, replay.py runs the live Engine over them, run.py does the study, console.py,
export.py and report.py (with templates/report.html) show it, command.py is the subcommand.
Names load on first use: `riskon --help` reads command.py's options without importing numpy.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "add_backtest_parser": "command", "cmd_backtest": "command", "print_report": "console",
    "to_json": "export", "write_csv": "export", "write_json": "export",
    "BacktestError": "history", "History": "history", "fetch_live_history": "history", "load_csv_history": "history",
    "RuleRun": "replay", "replay_rules": "replay",
    "render_html": "report", "write_html": "report",
    "BacktestResult": "run", "SymbolSpan": "run", "backtest": "run", "choose_roles": "run",
    "composite_members": "run",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use."""
    if name not in _WHERE:
        raise AttributeError(f"module 'bot.backtest' has no attribute {name!r}")
    return getattr(importlib.import_module(f"bot.backtest.{_WHERE[name]}"), name)
