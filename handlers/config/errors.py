"""The one configuration error: what is wrong, and where in the user's file it was set."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass


@dataclass(eq=False)  # an exception is equal only to itself, and hashable
class ConfigError(ValueError):
    """The configuration cannot be served. ``message`` names the setting (and the site,
    for a BackendSite keyword) and the bad value; ``setting`` and ``site`` say where to
    look for it in the user's file, and once found ``path`` and ``line`` say where it is
    (handlers/config/load.py)."""

    message: str
    setting: str | None = None
    site: str | None = None
    _: KW_ONLY
    path: str | None = None
    line: int | None = None

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        if self.path is None:
            return self.message
        where = self.path if self.line is None else f"{self.path}, line {self.line}"
        return f"{where}: {self.message}"


def did_you_mean(name: str, spellings: Mapping[str, str]) -> str:
    """'; did you mean <name>?' for the declared name closest to a misspelt ``name``, or
    '' when none is close. ``spellings`` maps each lower-case spelling worth matching to
    the name to suggest."""
    close = difflib.get_close_matches(name.lower(), spellings, n=1)
    return f"; did you mean {spellings[close[0]]}?" if close else ""


__all__ = ["ConfigError", "did_you_mean"]
