import os
import sys
from pathlib import Path

import pytest
from hypothesis import settings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from tests.support import IN_CI, LoopThread  # noqa: E402
from tests.support.properties import QUICK  # noqa: E402

# Each folder of tests is a suite, selectable as a marker: ``pytest -m unit`` runs the
# pure parts in seconds; ``integration`` starts real backends and the proxy on loopback,
# ``browser`` drives Chromium, ``deploy`` runs nginx, supervisor and systemd's checks.
SUITES = ("unit", "integration", "browser", "deploy")
TESTS = Path(__file__).parent

# Property tests without a count of their own run Hypothesis's default (100 examples), or
# 10 under HYPOTHESIS_PROFILE=quick; those with one scale it (tests/support/properties.py).
settings.register_profile("quick", max_examples=10)


def pytest_configure(config: pytest.Config) -> None:
    if QUICK:
        if IN_CI:
            raise pytest.UsageError("HYPOTHESIS_PROFILE=quick is for editing; CI runs in full")
        settings.load_profile("quick")


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    # Under ``-m <suite>`` alone, the other suites' folders hold nothing it selects: they
    # are not even imported (``-m unit`` then starts in a second less).
    wanted = config.option.markexpr
    name = collection_path.name
    if wanted in SUITES and collection_path.parent == TESTS and name in SUITES and name != wanted:
        return True
    return None  # the usual rules decide


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
