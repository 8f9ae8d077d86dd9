"""Pure domain of riskon: bars, series, rules, notify policy and message text (no I/O, no clock)."""
