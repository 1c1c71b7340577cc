"""The optional login (``config.users``): its page, the session cookie it sets, logout.

Passwords are checked with argon2 (argon2-cffi), in a thread so that the IOLoop never
waits for a hash. An unknown user is checked against a dummy hash, so that the answer's
time does not tell which names exist. Failed tries are throttled per client address
and per user name (per process: each instance counts its own). The session is a signed,
expiring cookie (handlers/door/access.py: Sessions) that every instance sharing
``config.cookie_secret`` accepts.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
from html import escape

from argon2 import PasswordHasher
from argon2.exceptions import Argon2Error, InvalidHashError

from filters.names import LOGIN_PATH, PROXY_PAGES, SESSION_COOKIE
from handlers.door.access import in_networks
from handlers.door.markup import render_page
from handlers.door.pages import PageHandler
from handlers.door.target import client_is_secure

log = logging.getLogger(__name__)

_HASHER = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    return _HASHER.hash("not anybody's password")


def _verify(hashed: str, password: str) -> bool:
    try:
        return _HASHER.verify(hashed, password)
    except (Argon2Error, InvalidHashError):
        return False


def hash_password(password: str) -> str:
    """The value to put in ``config.users`` for this password."""
    return _HASHER.hash(password)


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a path on this proxy, never another host."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return PROXY_PAGES


def login_html(next_path: str, error: str = "", name: str = "") -> str:
    message = f"<p class=error id=error>{escape(error)}</p>" if error else ""
    return render_page(
        "web_proxy: log in",
        "<h1>Log in</h1><p class=sub>This proxy asks you to log in before you open its sites.</p>"
        f'{message}<form class=login method=post action="{LOGIN_PATH}">'
        f'<input type=hidden name=next value="{escape(next_path)}">'
        f'<label>Name <input name=name autocomplete=username value="{escape(name)}" autofocus>'
        "</label><label>Password <input name=password type=password"
        " autocomplete=current-password></label><button>Log in</button></form>",
    )


class LoginHandler(PageHandler):
    def prepare(self) -> None:
        context = self.context
        if context.sessions is None:
            self.send_error_page(404, "No login here", "This proxy has no login.")
        elif not in_networks(context.client_ip(self.request), context.client_networks):
            self.send_error_page(403, "Forbidden", "You may not open this through the proxy.")

    def get(self) -> None:
        self.set_header("Cache-Control", "no-store")
        self.finish(login_html(safe_next(self.get_query_argument("next", None))))

    async def post(self) -> None:
        context = self.context
        assert context.sessions is not None
        self.set_header("Cache-Control", "no-store")
        name = self.get_body_argument("name", "")
        password = self.get_body_argument("password", "")
        next_path = safe_next(self.get_body_argument("next", None))
        keys = (f"client {context.client_ip(self.request)}", f"user {name}")
        wait = context.throttle.wait(*keys)
        if wait > 0:
            log.warning("login as %r from %s: throttled", name, keys[0])
            self.set_status(429)
            self.set_header("Retry-After", str(math.ceil(wait)))
            self.finish(login_html(next_path, "Too many failed tries: wait a moment.", name))
            return
        hashed = context.options.users.get(name)
        loop = asyncio.get_running_loop()
        ok = await loop.run_in_executor(None, _verify, hashed or _dummy_hash(), password)
        if not ok or hashed is None:
            context.throttle.failed(*keys)
            log.warning("login as %r from %s: wrong name or password", name, keys[0])
            self.set_status(401)
            self.finish(login_html(next_path, "Wrong name or password.", name))
            return
        context.throttle.succeeded(*keys)
        self.set_cookie(
            SESSION_COOKIE,
            context.sessions.issue(name),
            path="/",
            max_age=context.options.session_seconds,
            httponly=True,
            samesite="Lax",
            secure=client_is_secure(self.request, context),
        )
        self.redirect(next_path)


class LogoutHandler(PageHandler):
    def post(self) -> None:
        self.clear_cookie(SESSION_COOKIE, path="/")
        self.redirect(LOGIN_PATH)

    def get(self) -> None:
        self.redirect(PROXY_PAGES)


__all__ = ["LoginHandler", "LogoutHandler", "hash_password", "login_html", "safe_next"]
