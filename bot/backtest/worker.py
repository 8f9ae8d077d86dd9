"""The backtest's rule run, handed to a forked worker process while this one gets the study ready.

The rules over history (replay.py) are most of a backtest, and need nothing the study needs: the worker runs them
on its own core while this process loads numpy and the report and studies the pairs of symbols that no alert
changes. The worker is a fork, so it starts with the config and history already built (no copy of them is
sent); what comes back is the run (alerts and computed bars, a few hundred kB pickled). Same code, same inputs,
same result: a busy machine or one core, or a worker that fails, runs the rules here instead.
"""

from __future__ import annotations

import os
import pickle
import signal
import threading
import time
from datetime import date
from types import TracebackType

from bot.backtest.history import BacktestError, History
from bot.backtest.replay import RuleRun, replay_rules
from bot.config import Config

# What a run hands back: the rules' alerts and computed bars, and the wall and CPU seconds they took.
Measured = tuple[RuleRun, float, float]


def core_is_spare(load: float, cores: int) -> bool:
    """Say whether the machine's recent load leaves a core idle for a worker: the load average (this command's
    own runs part of it) under the number of cores, as `make -l` decides whether to start another job.

    Two processes of one command share the CPU the system gives the command (the scheduler groups a session's
    processes): on a busy machine a worker only adds its cost (a forked process's copied memory).
    """
    return cores > 1 and load < cores


def use_worker(workers: int | None) -> bool:
    """Say whether the rules run in a worker process: `workers` 1 never; 2 or more whenever one can; None (the
    default) when a core is spare. One can when fork exists, a second core is ours and only one thread runs (a
    fork copies just the calling thread: a lock another one held would stay held in the worker)."""
    if workers == 1 or not hasattr(os, "fork") or threading.active_count() > 1:
        return False
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if cores < 2:
        return False
    return workers is not None or core_is_spare(os.getloadavg()[0], cores)


def run_rules(config: Config, history: History, start: date | None) -> Measured:
    """Run the rules over the history here; return the run and the wall and CPU seconds it took."""
    started, started_cpu = time.perf_counter(), time.process_time()
    run = replay_rules(config, history.bars, start, history.flows, history.truncated_since)
    return run, time.perf_counter() - started, time.process_time() - started_cpu


class RuleDrive:
    """The rules over a history, started at once in a worker process when `workers` allows one (see use_worker;
    by default none), else run here when their result is first asked for. Close it (or use it in `with`) so no
    worker outlives it."""

    def __init__(self, config: Config, history: History, start: date | None = None, *,
                 workers: int | None = 1) -> None:
        if not history.bars:
            why = "".join(f"\n  {problem}" for problem in history.problems[:8])
            more = f"\n  … and {len(history.problems) - 8} more" if len(history.problems) > 8 else ""
            raise BacktestError("no history for any configured symbol"
                                + (f" in {history.source}" if history.source else "") + why + more)
        if not config.build_rules():
            raise BacktestError("no enabled rules in the config: nothing to backtest")
        self.config, self.history, self.start = config, history, start
        self.started = time.perf_counter()  # the backtest's own clock starts with its rules
        self.forked = use_worker(workers)
        self.pid: int | None = None  # the worker process while it runs
        self._pipe: int | None = None
        self._result: Measured | None = None
        if self.forked:
            self._fork()

    def _fork(self) -> None:
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the worker: run, send, and leave without the parent's exit handlers or buffered output
            status = 1
            try:
                os.close(read_end)
                measured = run_rules(self.config, self.history, self.start)
                with os.fdopen(write_end, "wb") as pipe:
                    pickle.dump(measured, pipe, protocol=pickle.HIGHEST_PROTOCOL)
                status = 0
            except BaseException:  # the parent runs the rules itself and meets the error there, with its traceback
                pass
            finally:
                os._exit(status)
        os.close(write_end)
        self.pid, self._pipe = pid, read_end

    def result(self) -> Measured:
        """Return the run and the wall and CPU seconds the rules took (waiting for the worker, if one runs)."""
        if self._result is None:
            received = self._receive() if self.pid is not None else None
            # No worker, or it did not finish: the same run here (where a bug in it raises as it always has).
            self._result = received or run_rules(self.config, self.history, self.start)
        return self._result

    def _receive(self) -> Measured | None:
        """Read the worker's run and reap it; None when it failed."""
        assert self._pipe is not None
        pipe, self._pipe = self._pipe, None
        with os.fdopen(pipe, "rb") as reader:
            sent = reader.read()
        if not self._reap():
            return None
        measured: Measured = pickle.loads(sent)
        return measured

    def _reap(self, kill: bool = False) -> bool:
        """Wait for the worker to end (stopping it first when `kill`); say whether it ended well."""
        pid, self.pid = self.pid, None
        if pid is None:
            return False
        if kill:
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0

    def close(self) -> None:
        """Stop and reap a worker whose result was never asked for (an error or Ctrl-C in between)."""
        if self._pipe is not None:
            os.close(self._pipe)
            self._pipe = None
        if self.pid is not None:
            self._reap(kill=True)

    def __enter__(self) -> RuleDrive:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()
