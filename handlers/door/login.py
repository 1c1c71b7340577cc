"""The login page: a form for local users (``config.users``) and the directory
(``config.ldap_*``), a button to the OpenID Connect provider (``config.oidc_*``, whose
handlers are handlers/door/signin.py); and signing out.

Local passwords are checked with argon2 (argon2-cffi), in a thread so that the IOLoop
never waits for a hash. An unknown user is checked against a dummy hash, so that the
answer's time does not tell which names exist; a name that is not a local user goes to
the directory, when there is one. Failed tries are throttled per client address and per
user name (per process: each instance counts its own). The session is a signed,
expiring cookie (handlers/door/identity.py) that every instance sharing
``config.cookie_secret`` accepts. Every sign-in, failure and sign-out is an event of the
audit trail (handlers/ops/audit.py).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import urllib.parse
from html import escape

from argon2 import PasswordHasher
from argon2.exceptions import Argon2Error, InvalidHashError

from filters.names import LOGIN_PATH, OIDC_START_PATH, PROXY_PAGES, SESSION_COOKIE
from handlers.door.access import in_networks
from handlers.door.directory import DirectoryDown
from handlers.door.identity import Identity
from handlers.door.markup import render_page
from handlers.door.signin import SignInHandler, public_url, safe_next
from handlers.ops.audit import SIGN_IN, SIGN_IN_FAILED, SIGN_OUT

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


def login_html(next_path: str, error: str = "", name: str = "", form: bool = True,
               provider: bool = False) -> str:  # fmt: skip
    """The login page: the name and password form (local users, the directory) and/or
    the button that signs in at the OpenID Connect provider."""
    message = f"<p class=error id=error>{escape(error)}</p>" if error else ""
    parts = []
    if form:
        parts.append(
            f'<form class=login method=post action="{LOGIN_PATH}">'
            f'<input type=hidden name=next value="{escape(next_path)}">'
            f'<label>Name <input name=name autocomplete=username value="{escape(name)}"'
            " autofocus></label><label>Password <input name=password type=password"
            " autocomplete=current-password></label><button>Log in</button></form>"
        )
    if provider:
        query = urllib.parse.urlencode({"next": next_path})
        parts.append(
            f'<p><a class=provider id=provider href="{OIDC_START_PATH}?{escape(query)}">'
            "Sign in with your organisation's account</a></p>"
        )
    return render_page(
        "web_proxy: log in",
        "<h1>Log in</h1><p class=sub>This proxy asks you to log in before you open its sites.</p>"
        + message
        + "".join(parts),
    )


class LoginHandler(SignInHandler):
    """``/.proxy/login``: the form for local users and the directory, and the way to the
    provider."""

    def prepare(self) -> None:
        context = self.context
        if context.sessions is None:
            self.send_error_page(404, "No login here", "This proxy has no login.")
        elif not in_networks(context.client_ip(self.request), context.client_networks):
            self.refuse("client address", "You may not open this through the proxy.")

    @property
    def has_form(self) -> bool:
        return bool(self.context.options.users) or self.context.directory is not None

    def page(self, next_path: str, error: str = "", name: str = "") -> str:
        provider = self.context.oidc is not None
        return login_html(next_path, error, name, self.has_form, provider)

    def get(self) -> None:
        self.set_header("Cache-Control", "no-store")
        next_path = safe_next(self.get_query_argument("next", None))
        if not self.has_form and self.context.oidc is not None:
            # The provider is the only way in: go there at once.
            self.redirect(f"{OIDC_START_PATH}?{urllib.parse.urlencode({'next': next_path})}")
            return
        self.finish(self.page(next_path))

    async def post(self) -> None:
        context = self.context
        assert context.sessions is not None
        self.set_header("Cache-Control", "no-store")
        if self.cross_site():
            self.refuse("cross-site post", "Sign in from this proxy's own login page.")
            return
        if not self.has_form:
            self.send_error_page(
                405, "Not here", "Sign in at the provider: this proxy has no form."
            )
            return
        name = self.get_body_argument("name", "")
        # As typed: a password may begin or end with spaces (Tornado strips by default).
        password = self.get_body_argument("password", "", strip=False)
        next_path = safe_next(self.get_body_argument("next", None))
        client = context.client_ip(self.request)
        # A directory matches names ignoring case: "BOB" is bob to the throttle too.
        keys = (f"client {client}", f"user {name.casefold()}")
        wait = context.throttle.wait(*keys)
        if wait > 0:
            self.audit(SIGN_IN_FAILED, name, None, "throttled", 429)
            self.set_status(429)
            self.set_header("Retry-After", str(math.ceil(wait)))
            self.finish(self.page(next_path, "Too many failed tries: wait a moment.", name))
            return
        try:
            identity = await self.check(name, password)
        except DirectoryDown as exc:
            log.error("the directory cannot be reached: %s", exc)
            self.audit(SIGN_IN_FAILED, name, "ldap", "directory unreachable", 503)
            self.set_status(503)
            self.set_header("Retry-After", "10")
            self.finish(
                self.page(next_path, "The directory cannot be reached: try again later.", name)
            )
            return
        if identity is None:
            context.throttle.failed(*keys)
            self.audit(SIGN_IN_FAILED, name, None, "wrong name or password", 401)
            self.set_status(401)
            self.finish(self.page(next_path, "Wrong name or password.", name))
            return
        context.throttle.succeeded(keys[1])  # the address keeps its count
        self.audit(SIGN_IN, identity.name, identity.method, "", 302)
        self.start_session(identity)
        self.redirect(next_path)

    async def check(self, name: str, password: str) -> Identity | None:
        """The identity if the password is right: a local user's (argon2, in a thread,
        with a dummy hash for unknown names so the time tells nothing), else the
        directory's."""
        options, directory = self.context.options, self.context.directory
        hashed = options.users.get(name)
        # Every name costs one argon2 check, local or not: a name that is not a local
        # account is not answered faster than one that is. (A directory's own time still
        # comes on top for the names it is asked about.)
        loop = asyncio.get_running_loop()
        ok = await loop.run_in_executor(None, _verify, hashed or _dummy_hash(), password)
        if hashed is not None or directory is None:
            return Identity(name) if ok and hashed is not None else None
        return await directory.sign_in(name, password)


class LogoutHandler(SignInHandler):
    """Signing out: the session cookie cleared; signed in at the provider, the browser
    goes on to end the provider's session too (RP-initiated logout), and comes back to
    the login page."""

    async def post(self) -> None:
        context = self.context
        if self.cross_site():
            self.refuse("cross-site post", "Sign out from this proxy's own pages.")
            return
        identity = context.identity(self.request)
        self.clear_cookie(SESSION_COOKIE, path="/")
        if identity is not None:
            self.audit(SIGN_OUT, identity.name, identity.method, "", 302)
        if identity is not None and identity.method == "oidc" and context.oidc is not None:
            back = public_url(self.request, context, LOGIN_PATH)
            provider = await context.oidc.end_session_url(back)
            if provider is not None:
                self.redirect(provider)
                return
        self.redirect(LOGIN_PATH)

    def get(self) -> None:
        self.redirect(PROXY_PAGES)


__all__ = ["LoginHandler", "LogoutHandler", "hash_password", "login_html", "safe_next"]
