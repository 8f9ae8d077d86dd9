"""Fake services that speak the real wire protocols, served on 127.0.0.1 for the tests (plumbing: server.py)."""
