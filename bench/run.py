"""Run every benchmark under bench/ and print one table of figures: python bench/run.py [NAME ...]."""

from __future__ import annotations

import importlib
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))


def main(names: list[str]) -> int:
    modules = sorted(p.stem for p in HERE.glob("bench_*.py"))
    if names:
        modules = [m for m in modules if any(n in m for n in names)]
    rows: list[tuple[str, str]] = []
    failed = 0
    for module_name in modules:
        started = time.perf_counter()
        print(f"running {module_name} ...", file=sys.stderr, flush=True)
        try:
            rows += importlib.import_module(module_name).main()
        except Exception:
            failed += 1
            traceback.print_exc()
            rows.append((module_name, "FAILED (see above)"))
        print(f"  {module_name} took {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    width = max((len(name) for name, _ in rows), default=10)
    print(f"\n{'figure':<{width}}  value\n{'-' * width}  {'-' * 30}")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
