"""A backend whose answers take time, for the tests of operating a proxy process."""

from __future__ import annotations

import pytest

from tests.deploy.operations import answer_slowly, download_slowly, stream_events
from tests.support import start_backend


@pytest.fixture(scope="module")
def slow_backend(loop_thread):
    return start_backend(
        loop_thread,
        "slow",
        {"/slow": answer_slowly, "/download": download_slowly, "/events": stream_events},
    )
