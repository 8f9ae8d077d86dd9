"""Memory of the live bot: glibc's malloc held to a few arenas, and its free pages handed back after each poll.

glibc gives every thread that allocates its own malloc arena (up to 8 per core). riskon's feeds import and parse
on worker threads (Yahoo's pool, the fragility reads, the database and import threads), so what they free stays
spread over many arenas: 22-29 MB free inside malloc in a default `riskon run`, much of it resident. With the
GIL, more arenas buy almost no speed. The two arenas save about 9 MB of its 233 MB and the release after each
poll 3-4 MB more, at no measured CPU cost (docs/operations.md, Memory). Both are the usual glibc remedies
(MALLOC_ARENA_MAX; malloc_trim, as Dask advises for its workers); elsewhere (macOS, musl) they do nothing.
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform
from functools import cache
from typing import Any, Mapping

log = logging.getLogger(__name__)

M_ARENA_MAX = -8  # mallopt's parameter number (malloc.h)
ARENAS = 2  # the main thread's arena and one for every worker thread


@cache
def _glibc() -> Any | None:
    """Return the C library when it is glibc (which has mallopt and malloc_trim), else None."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def limit_arenas(environ: Mapping[str, str] = os.environ, arenas: int = ARENAS) -> bool:
    """Hold malloc to `arenas` arenas for threads started from now on, unless the environment already sets a limit;
    say whether this call set it."""
    if "MALLOC_ARENA_MAX" in environ or "arena_max" in environ.get("GLIBC_TUNABLES", ""):
        return False  # the operator's own choice wins
    libc = _glibc()
    if libc is None:
        return False
    return bool(libc.mallopt(M_ARENA_MAX, arenas))


def release_free_memory() -> bool:
    """Hand the pages malloc holds free in every arena back to the system; say whether any were."""
    libc = _glibc()
    return bool(libc.malloc_trim(0)) if libc is not None else False
