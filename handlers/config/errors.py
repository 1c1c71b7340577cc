"""The one configuration error: what is wrong, and where in the user's file it was set."""

from __future__ import annotations


class ConfigError(ValueError):
    """The configuration cannot be served. The message names the setting (and the site,
    for a BackendSite keyword) and the bad value; ``setting`` and ``site`` say where to
    look for it in the user's file, and once found ``path`` and ``line`` say where it is
    (handlers/config/load.py)."""

    def __init__(
        self,
        message: str,
        setting: str | None = None,
        site: str | None = None,
        *,
        path: str | None = None,
        line: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.setting = setting
        self.site = site
        self.path = path
        self.line = line

    def __str__(self) -> str:
        if self.path is None:
            return self.message
        where = self.path if self.line is None else f"{self.path}, line {self.line}"
        return f"{where}: {self.message}"


__all__ = ["ConfigError"]
