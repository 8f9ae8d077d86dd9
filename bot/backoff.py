"""The one back-off formula riskon uses for feeds, symbols and deliveries that keep failing."""

from __future__ import annotations

import random


def backoff_seconds(failures: int, base: float, cap: float, rng: random.Random) -> float:
    """Return the pause after `failures` failures in a row: base doubled each time, capped, jittered to half-full.

    The jitter spreads retries of many symbols or chats that failed together (one outage) instead of sending
    them back all at once.
    """
    full = min(cap, base * 2 ** max(failures - 1, 0))
    return rng.uniform(full / 2, full)
