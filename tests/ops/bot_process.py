"""Run `riskon run` as a real subprocess from an async test, keeping every line it logs."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sqlite3
import sys
import time
from pathlib import Path
from typing import Sequence


class BotProcess:
    """A `python -m bot ...` child process whose stdout and stderr lines are collected as they come."""

    def __init__(self, args: Sequence[str], cwd: Path, env: dict[str, str] | None = None, umask: int | None = None):
        self.args, self.cwd = list(args), cwd
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.umask = umask
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self.process: asyncio.subprocess.Process | None = None
        self._readers: list[asyncio.Task] = []

    async def start(self) -> BotProcess:
        """Start the process and the readers of its output."""
        umask = self.umask
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", *self.args, cwd=self.cwd, env=self.env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            preexec_fn=(lambda: os.umask(umask)) if umask is not None else None,
        )
        self._readers = [asyncio.create_task(self._read(self.process.stdout, self.stdout)),
                         asyncio.create_task(self._read(self.process.stderr, self.stderr))]
        return self

    @staticmethod
    async def _read(stream: asyncio.StreamReader, into: list[str]) -> None:
        while line := await stream.readline():
            into.append(line.decode("utf-8", "replace").rstrip("\n"))

    @property
    def lines(self) -> list[str]:
        """Return every line written so far, stderr then stdout."""
        return self.stderr + self.stdout

    async def wait_for_line(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        """Wait (bounded) for a line matching `pattern` on stderr or stdout; fail with the output so far."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while time.monotonic() < deadline:
            for line in self.lines:
                if match := regex.search(line):
                    return match
            if self.process is not None and self.process.returncode is not None:
                break
            await asyncio.sleep(0.05)
        raise AssertionError(f"no line matching {pattern!r} within {timeout} s:\n" + "\n".join(self.lines[-40:]))

    async def stop(self, signum: int = signal.SIGTERM, timeout: float = 30.0) -> tuple[int, float]:
        """Send a signal and wait for the exit; return the exit code and the seconds it took."""
        assert self.process is not None
        started = time.monotonic()
        if self.process.returncode is None:
            self.process.send_signal(signum)
        try:
            code = await asyncio.wait_for(self.process.wait(), timeout)
        finally:
            await self.kill()
        return code, time.monotonic() - started

    async def kill(self) -> None:
        """Kill the process if it still runs, and collect the rest of its output."""
        if self.process is None:
            return
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        await asyncio.gather(*self._readers, return_exceptions=True)


def stored_bars(db: Path) -> int:
    """Return how many bars a running bot's database holds (0 while it cannot be read), reading it read-only."""
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            return conn.execute("select count(*) from bars").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return 0
