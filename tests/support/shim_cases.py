"""The in-page shim's URL mapping cases (tests/data/shim_cases.json), which the shim runs
in Node (tests/integration/test_shim.py) and in Chromium (tests/browser/test_browser_shim.py)."""

from __future__ import annotations

import json
from pathlib import Path

CASES = json.loads((Path(__file__).parent.parent / "data" / "shim_cases.json").read_text())


def expand(text: str, proxy: str, a: str, b: str) -> str:
    """Fill a case's placeholders for a proxy origin and two backend origins."""
    a_host, b_host = a.split("//")[1], b.split("//")[1]
    return (
        text.replace("{proxy}", proxy)
        .replace("{ws}", proxy.replace("http", "ws", 1))
        .replace("{a_host}", a_host)
        .replace("{A_HOST}", a_host.upper())
        .replace("{b_host}", b_host)
        .replace("{a}", a)
        .replace("{b}", b)
    )


def expanded_cases(proxy: str, a: str, b: str) -> list[tuple[str, str]]:
    return [(expand(i, proxy, a, b), expand(o, proxy, a, b)) for i, o in CASES["cases"]]
