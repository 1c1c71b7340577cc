"""How many examples a property test runs: its full count by default, as CI runs it.

``HYPOTHESIS_PROFILE=quick`` is for a fast loop while editing (``pytest -m unit`` in a few
seconds): each property test runs a tenth of its examples, at least 10. CI refuses it
(tests/conftest.py), so the full run keeps its strength."""

import os

QUICK = os.environ.get("HYPOTHESIS_PROFILE") == "quick"


def examples(full: int) -> int:
    """The number of examples for a property test that runs ``full`` of them in full."""
    return max(10, full // 10) if QUICK else full
