"""What the demo applications of ``--demo`` share: a request log, a cookie session, their
look, and routes declared on the handlers.

* ``notes`` (demo/notes.py): a single-page app that builds every URL in script;
* ``team`` (demo/team.py): an application installed under a sub-path, ``/team/``.

Both record every request they receive (``DemoApp.log``), so that tests can check
from the backends' side which requests reached them, and as whom.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from tornado.web import Application, RequestHandler

STYLE = (
    "body{font-family:system-ui,sans-serif;margin:0;color:#222}"
    "header{display:flex;gap:.75rem;padding:.75rem 1rem;color:#fff;background:%s}"
    "header b{margin-left:auto}main{padding:1rem}li{margin:.2rem 0}"
)


@dataclass
class Seen:
    """One request as the demo app saw it."""

    method: str
    path: str
    user: str | None


@dataclass
class DemoApp:
    name: str
    sessions: dict[str, str] = field(default_factory=dict)
    log: list[Seen] = field(default_factory=list)
    items: list[str] = field(default_factory=list)


class Routed(Protocol):
    """A handler class that names the path pattern it answers."""

    route: ClassVar[str]


def application(args: dict[str, Any], *handlers: type[Routed]) -> Application:
    """An application of ``handlers``, tried in this order, each given ``args``."""
    return Application([(handler.route, handler, args) for handler in handlers])


class AppHandler(RequestHandler):
    """A page or API of a demo app: logs each request and knows its user's session."""

    route: ClassVar[str]

    def initialize(self, app: DemoApp) -> None:
        self.app = app

    def prepare(self) -> None:
        self.app.log.append(Seen(self.request.method or "", self.request.path, self.user()))

    def user(self) -> str | None:
        return self.app.sessions.get(self.get_cookie("sid", "") or "")

    def login(self, name: str, path: str) -> None:
        token = secrets.token_hex(8)
        self.app.sessions[token] = name
        self.set_cookie("sid", token, path=path, httponly=True, samesite="Lax")


__all__ = ["STYLE", "AppHandler", "DemoApp", "Seen", "application"]
