"""Fixtures shared by every test package."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest

from storage import Store
from tests.market import market_folder

REPO = Path(__file__).resolve().parent.parent

# Tests that drive real `riskon run` processes, spin a core, or bound a latency. Under pytest-xdist (pyproject:
# -n 2 --dist loadgroup) they run one at a time on one worker, and first, since together they are the longest
# stretch: two of them side by side on two cores would starve each other's processes and stretch their waits.
ONE_AT_A_TIME = {
    "tests/ops/test_crash_safety.py", "tests/ops/test_soak.py", "tests/ops/test_sigterm.py",
    "tests/ops/test_store_faults.py", "tests/ops/test_busy_start.py", "tests/ops/test_security.py",
    "tests/ops/test_faults.py", "tests/ops/test_slow_chats.py", "tests/ops/test_log_hygiene.py",
    "tests/bot/test_telegram_pacing.py", "tests/bot/test_telegram_fanout.py", "tests/bot/test_cli.py",
    "tests/bot/feeds/test_yahoo_concurrency.py", "tests/bot/feeds/test_yahoo.py", "tests/bot/feeds/test_exchange.py",
}


def pytest_collection_modifyitems(config, items):
    """Put the one-at-a-time tests in one xdist group, at the front of the run; every other module is a group of
    its own, so a module-scoped fixture (the backtest of the real history, say) is built once, not per worker."""
    grouped = [item for item in items if item.nodeid.split("::")[0] in ONE_AT_A_TIME]
    for item in grouped:
        item.add_marker(pytest.mark.xdist_group("one_at_a_time"))
    rest = [item for item in items if item.nodeid.split("::")[0] not in ONE_AT_A_TIME]
    for item in rest:
        item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))
    items[:] = grouped + rest


@pytest.fixture
def market_data() -> Path:
    """Return the real market history folder, or skip saying why."""
    return market_folder()


@pytest.fixture
def store() -> Store:
    """Return a fresh in-memory store."""
    db = Store.memory()
    yield db
    db.close()


@pytest.fixture
def runtime_clock():
    """Return the clock the shared runtime reads (None: the system clock); a module overrides it to fix `now`."""
    return None


@pytest.fixture
def runtime(tmp_path, runtime_config, runtime_clock, store):
    """Return a Runtime (not started) over the module's `runtime_config` YAML text and a fresh in-memory store."""
    from bot.config import load_config
    from bot.runtime import Runtime

    path = tmp_path / "config.yaml"
    path.write_text(runtime_config)
    return Runtime(load_config(path), store, **({"clock": runtime_clock} if runtime_clock else {}))


# Loggers riskon's logging setup (bot/logs.py) or a test sets the level of; the root's level as well.
LEVELS_KEPT = ("", "httpx", "httpcore", "telegram", "yfinance")


@pytest.fixture(autouse=True)
def _logging_levels_as_found():
    """Restore the loggers' levels after each test: an in-process `riskon` command sets them for good, and what
    a later test on the same worker logs (or captures) must not depend on which tests ran before it."""
    levels = {name: logging.getLogger(name).level for name in LEVELS_KEPT}
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


@pytest.fixture(autouse=True)
def _no_network_beyond_loopback(monkeypatch):
    """Fail any test that tries to reach a host other than this machine."""
    real_connect = socket.socket.connect

    def guarded(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and not (host.startswith("127.") or host in ("localhost", "::1") or host.startswith("/")):
            raise AssertionError(f"test tried to reach {address}: only 127.0.0.1 is allowed")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
