"""The reference for bench_backtest: the same work as `riskon backtest` over the shared data, in bare numpy.

It reads the price CSVs of the default config's symbols, finds each leader's new closing highs (the signal days
of the default `smallcap_ath` rule: a close above every earlier close, re-armed 2% above the last alerted one,
fresh after 30 days without one) and each follower's return 7, 30, 90 and 180 calendar days after each signal
(first close on or after the day), plus the baseline of every day's forward returns. No engine, no store, no
report: the least any backtest of these signals must do. Prints the number of signals and outcomes.

Run: python bench/reference_backtest.py DATA_FOLDER
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

LEADERS = {"^RUT": "RUT", "IWM": "IWM", "IWN": "IWN"}
FOLLOWERS = {"BTC": "BTC-USD", "ETH": "ETH-USD", "SOL": "SOL-USD", "XRP": "XRP-USD", "ADA": "ADA-USD",
             "DOGE": "DOGE-USD", "BNB": "BNB-USD"}
HORIZONS = (7, 30, 90, 180)
REARM_PCT, MIN_GAP_DAYS = 2.0, 30


def read_closes(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Return (days since 1970 as int64, closes) of a daily OHLCV CSV."""
    table = np.genfromtxt(path, delimiter=",", skip_header=1, usecols=(0, 4), dtype=None, encoding="utf-8",
                          converters={0: lambda text: np.datetime64(text[:10], "D").astype(np.int64)})
    days = np.array([row[0] for row in table], dtype=np.int64)
    closes = np.array([row[1] for row in table], dtype=np.float64)
    return days, closes


def signal_days(days: np.ndarray, closes: np.ndarray) -> np.ndarray:
    """Return the days of new closing highs, re-armed and marked fresh as the default rule does."""
    earlier_best = np.maximum.accumulate(np.concatenate(([-np.inf], closes[:-1])))
    candidates = np.flatnonzero(closes > earlier_best)[1:]  # the first bar has nothing to beat
    out, last_alerted, last_high_day = [], None, None
    for index in candidates:
        day, close = days[index], closes[index]
        fresh = last_high_day is None or day - last_high_day >= MIN_GAP_DAYS
        if fresh or last_alerted is None or close >= last_alerted * (1 + REARM_PCT / 100):
            out.append(day)
            last_alerted = close
        last_high_day = day
    return np.array(out, dtype=np.int64)


def forward_returns(days: np.ndarray, closes: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Return the % return from each start day's close to the first close `h` days later, per horizon (nan past the data)."""
    entry = np.searchsorted(days, starts)
    out = np.full((len(starts), len(HORIZONS)), np.nan)
    ok = entry < len(days)
    for column, horizon in enumerate(HORIZONS):
        exit_ = np.searchsorted(days, starts + horizon)
        valid = ok & (exit_ < len(days))
        out[valid, column] = (closes[exit_[valid]] / closes[entry[valid]] - 1) * 100
    return out


def main(folder: Path) -> tuple[int, int]:
    """Compute every signal's and every day's forward returns; return (signals, outcomes computed)."""
    followers = {name: read_closes(folder / f"{stem}.csv") for name, stem in FOLLOWERS.items()}
    signals = outcomes = 0
    for stem in LEADERS.values():
        days, closes = read_closes(folder / f"{stem}.csv")
        starts = signal_days(days, closes)
        signals += len(starts)
        for f_days, f_closes in followers.values():
            outcomes += int(np.isfinite(forward_returns(f_days, f_closes, starts)).sum())
            forward_returns(f_days, f_closes, f_days)  # the baseline: every day's forward returns
    return signals, outcomes


if __name__ == "__main__":
    found, computed = main(Path(sys.argv[1]))
    print(f"{found} signals, {computed} forward returns")
