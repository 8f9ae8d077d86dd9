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
