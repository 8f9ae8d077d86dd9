"""bot.memory: malloc held to two arenas however many threads allocate, and freed pages handed back.

Each case runs in a fresh interpreter: arenas are made once per thread, and pytest's own threads must not count.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bot.memory import _glibc, limit_arenas

REPO = Path(__file__).resolve().parents[2]
needs_glibc = pytest.mark.skipif(_glibc() is None, reason="malloc arenas and malloc_trim are glibc's (Linux)")

ARENAS_AFTER_THREADS = """
    import ctypes, json, os, tempfile, threading
    from bot.memory import limit_arenas
    applied = limit_arenas({}) if LIMIT else False
    held, together = [], threading.Barrier(8, timeout=30)
    def allocate():  # all eight alive at once: an ended thread's arena would be handed to the next one
        together.wait()
        held.append([bytearray(2000) for _ in range(200)])  # above pymalloc's 512 bytes: malloc's own blocks
        together.wait()
    threads = [threading.Thread(target=allocate) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    libc = ctypes.CDLL(None)
    libc.fopen.restype = ctypes.c_void_p
    libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
    libc.fclose.argtypes = [ctypes.c_void_p]
    libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    with tempfile.NamedTemporaryFile(suffix=".xml") as report:
        stream = libc.fopen(report.name.encode(), b"w")
        libc.malloc_info(0, stream)
        libc.fclose(stream)
        heaps = open(report.name).read().count("<heap nr=")
    print(json.dumps({"applied": applied, "arenas": heaps}))
"""

FREED_PAGES = """
    import json, threading
    from bot.memory import release_free_memory
    def rss_kb():
        return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("RssAnon"))
    kept = []
    def churn():  # a burst on a worker thread: 60 MB parsed, an eighth of it kept
        blocks = [bytearray(1000) for _ in range(60_000)]
        kept.extend(blocks[::8])
    worker = threading.Thread(target=churn)
    worker.start()
    worker.join()
    before = rss_kb()
    released = release_free_memory() if RELEASE else False
    print(json.dumps({"released": released, "freed_mb": (before - rss_kb()) / 1024}))
"""


def run_case(source: str, **flags: bool) -> dict:
    """Run a case's script in a fresh interpreter with `flags` set; return what it printed."""
    prelude = "".join(f"{name} = {value}\n" for name, value in flags.items())
    script = prelude + textwrap.dedent(source)
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@needs_glibc
def test_eight_worker_threads_share_two_arenas_once_limited() -> None:
    unlimited = run_case(ARENAS_AFTER_THREADS, LIMIT=False)
    limited = run_case(ARENAS_AFTER_THREADS, LIMIT=True)
    assert unlimited["arenas"] > 2  # each thread took an arena of its own: the case can tell
    assert limited == {"applied": True, "arenas": 2}


@pytest.mark.parametrize("environ", [{"MALLOC_ARENA_MAX": "4"}, {"GLIBC_TUNABLES": "glibc.malloc.arena_max=4"}])
def test_an_operators_own_arena_limit_is_left_alone(environ: dict[str, str]) -> None:
    assert limit_arenas(environ) is False


@needs_glibc
def test_pages_freed_after_a_burst_go_back_to_the_system() -> None:
    kept = run_case(FREED_PAGES, RELEASE=False)
    released = run_case(FREED_PAGES, RELEASE=True)
    assert kept["freed_mb"] < 5  # malloc alone keeps them: what the release is for
    assert released["released"] is True
    assert released["freed_mb"] > 20
