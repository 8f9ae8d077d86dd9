"""Fixtures shared by every test package."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from storage import Store
from tests.market import market_folder

REPO = Path(__file__).resolve().parent.parent


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
