import os
import sys
from pathlib import Path

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from tests.support import LoopThread  # noqa: E402

# Each folder of tests is a suite, selectable as a marker: ``pytest -m unit`` runs the
# pure parts in seconds; ``integration`` starts real backends and the proxy on loopback,
# ``browser`` drives Chromium, ``deploy`` runs nginx, supervisor and systemd's checks.
SUITES = ("unit", "integration", "browser", "deploy")


TESTS = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        # The first folder below tests/ names the suite (tests/integration/proxy/ too).
        suite = Path(str(item.path)).relative_to(TESTS).parts[0]
        if suite in SUITES:
            item.add_marker(getattr(pytest.mark, suite))


@pytest.fixture(scope="session")
def loop_thread():
    lt = LoopThread()
    yield lt
    lt.stop()
