"""The memory the login throttle holds (handlers/door/throttle.py) as distinct names fail,
at its default capacity (65,536 keys), measured with tracemalloc:

    .venv/bin/python bench/throttle_memory.py [--names 100000]

Each name fails once, a second after the one before (the window does not change what is
held). Prints the bytes held after 1,000 names, at capacity and after
``--names``, and the time of one ``failed`` call without tracing. The figures are for
reading; tests/unit/test_throttle.py asserts the behaviour (memory stops growing).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import tracemalloc

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from handlers.door.throttle import Throttle


def held(names: list[str], marks: list[int]) -> dict[int, int]:
    """Bytes traced as held after each count of names in ``marks``."""
    throttle = Throttle()
    figures = {}
    tracemalloc.start()
    try:
        done = 0
        for mark in marks:
            for i in range(done, mark):
                throttle.failed(names[i], now=float(i))
            done = mark
            figures[mark] = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(throttle) == min(done, throttle.capacity)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--names", type=int, default=100_000)
    args = parser.parse_args()
    names = [f"user n{i}" for i in range(args.names)]  # made before tracing starts
    capacity = Throttle().capacity
    marks = sorted({m for m in (1_000, capacity, args.names) if m <= args.names})
    for mark, size in held(names, marks).items():
        print(f"{mark:>9,} names failed: {size:>11,} bytes held (capacity {capacity:,})")
    throttle = Throttle()
    start = time.perf_counter()
    for i, name in enumerate(names):
        throttle.failed(name, now=float(i))
    per_call = (time.perf_counter() - start) / len(names) * 1e6
    print(f"failed(): {per_call:.1f} µs a call, untraced, over {len(names):,} names")


if __name__ == "__main__":
    main()
