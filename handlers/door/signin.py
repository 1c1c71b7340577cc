"""Signing in at the OpenID Connect provider: ``/.proxy/oidc/start`` sends the browser
there, ``/.proxy/oidc/callback`` takes its answer (handlers/door/oidc.py checks it). And
what every sign-in handler shares (``SignInHandler``): the audit trail and the session
cookie.

A sign-in in progress lives in a signed cookie named after its ``state``
(``.proxy-oidc.<first 12 characters>``, path ``/.proxy/oidc/``, ten minutes): two tabs
can sign in at once, and the callback finds its own. It is cleared on the way back, and
the state is remembered as used, so the same answer cannot be played twice.
"""

from __future__ import annotations

import logging
import re
import urllib.parse

from tornado.httputil import HTTPServerRequest
from tornado.web import create_signed_value, decode_signed_value

from filters.names import (
    LOGIN_PATH,
    OIDC_CALLBACK_PATH,
    OIDC_FLOW_COOKIE,
    PROXY_PAGES,
    SESSION_COOKIE,
)
from handlers.context import ProxyContext
from handlers.door.access import in_networks
from handlers.door.identity import Identity
from handlers.door.oidc import FLOW_SECONDS, Flow, SignInFailed
from handlers.door.pages import PageHandler
from handlers.door.target import client_is_secure, proxy_hosts
from handlers.ops.audit import REFUSED, SIGN_IN, SIGN_IN_FAILED, AuditEvent

log = logging.getLogger(__name__)
_FLOW_PATH = OIDC_CALLBACK_PATH.rsplit("/", 1)[0] + "/"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# What this proxy's states look like (Authlib's tokens): anything else was not made here.
_STATE = re.compile(r"[A-Za-z0-9_-]{16,128}")


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this proxy, never another host. Not one
    with a control character either: a browser drops tabs and line breaks from a URL
    before reading it (WHATWG URL parsing), so "/<tab>/evil.example" is //evil.example."""
    if (
        target
        and target.startswith("/")
        and not target.startswith(("//", "/\\"))
        and not _CONTROL.search(target)
    ):
        return target
    return PROXY_PAGES


def public_url(request: HTTPServerRequest, context: ProxyContext, path: str) -> str:
    """``path`` on this proxy as the browser reaches it (through nginx: its scheme and
    host, from a trusted proxy's X-Forwarded-Proto and X-Forwarded-Host)."""
    scheme = "https" if client_is_secure(request, context) else "http"
    hosts = proxy_hosts(request, context)
    host = hosts[1] if len(hosts) > 1 else (hosts[0] if hosts else "localhost")
    return f"{scheme}://{host}{path}"


class SignInHandler(PageHandler):
    """A page that signs people in or out."""

    def cross_site(self) -> bool:
        """Whether this POST comes from another site's page (login CSRF: signing a
        victim in as the attacker, or out). Browsers say where a request comes from in
        Sec-Fetch-Site, or else in Origin; a client that sends neither is not a browser
        acting for another site."""
        headers = self.request.headers
        fetch_site = headers.get("Sec-Fetch-Site")
        if fetch_site is not None:
            return fetch_site not in ("same-origin", "none")
        origin = headers.get("Origin")
        if origin is None:
            return False
        host = urllib.parse.urlsplit(origin).netloc.lower()
        ours = {h.lower() for h in proxy_hosts(self.request, self.context)}
        return origin == "null" or host not in ours

    def audit(
        self, event: str, user: str | None, method: str | None, reason: str, status: int
    ) -> None:
        request = self.request
        client = self.context.client_ip(request)
        self.state.audit(
            AuditEvent(event, client, user, request.path, reason, method=method, status=status)
        )

    def refuse(self, reason: str, detail: str) -> None:
        """A 403 of the sign-in pages, in the audit trail like every refusal."""
        self.audit(REFUSED, None, None, reason, 403)
        self.send_error_page(403, "Forbidden", detail)

    def start_session(self, identity: Identity) -> None:
        context = self.context
        assert context.sessions is not None
        self.set_cookie(
            SESSION_COOKIE,
            context.sessions.issue(identity),
            path="/",
            max_age=context.options.session_seconds,
            httponly=True,
            samesite="Lax",
            secure=client_is_secure(self.request, context),
        )


class OidcHandler(SignInHandler):
    def prepare(self) -> None:
        context = self.context
        if context.oidc is None or context.sessions is None:
            self.send_error_page(404, "No sign-in here", "This proxy has no sign-in provider.")
        elif not in_networks(context.client_ip(self.request), context.client_networks):
            self.refuse("client address", "You may not open this through the proxy.")

    def redirect_uri(self) -> str:
        configured = self.context.options.signin.oidc_redirect_url
        return configured or public_url(self.request, self.context, OIDC_CALLBACK_PATH)

    def flow_cookie(self, state: str) -> str:
        return f"{OIDC_FLOW_COOKIE}.{state[:12]}"

    def failed(self, exc: SignInFailed, status: int = 401) -> None:
        log.warning("sign-in at the provider failed: %s", exc.reason)
        self.audit(SIGN_IN_FAILED, None, "oidc", exc.reason, status)
        self.send_error_page(status, "Sign-in failed", f"{exc} ({LOGIN_PATH} to try again)")


class OidcStartHandler(OidcHandler):
    """Off to the provider, with a fresh state, nonce and PKCE verifier."""

    async def get(self) -> None:
        context = self.context
        assert context.oidc is not None and context.sessions is not None
        self.set_header("Cache-Control", "no-store")
        next_path = safe_next(self.get_query_argument("next", None))
        try:
            location, flow = await context.oidc.begin(next_path, self.redirect_uri())
        except SignInFailed as exc:
            self.failed(exc, 502)
            return
        name = self.flow_cookie(flow.state)
        value = create_signed_value(context.sessions.secret, name, flow.dump())
        self.set_cookie(
            name,
            value.decode("ascii"),
            path=_FLOW_PATH,
            max_age=FLOW_SECONDS,
            httponly=True,
            samesite="Lax",
            secure=client_is_secure(self.request, context),
        )
        self.redirect(location)


class OidcCallbackHandler(OidcHandler):
    """Back from the provider: the code exchanged, the ID token checked, a session."""

    async def get(self) -> None:
        context = self.context
        assert context.oidc is not None and context.sessions is not None
        self.set_header("Cache-Control", "no-store")
        error = self.get_query_argument("error", None)
        if error is not None:
            detail = self.get_query_argument("error_description", "") or error
            self.failed(SignInFailed("The provider did not sign you in.", f"provider: {detail}"))
            return
        state = self.get_query_argument("state", "")
        code = self.get_query_argument("code", "")
        if not _STATE.fullmatch(state) or not code:
            self.failed(
                SignInFailed("The provider's answer is incomplete.", "no state or code"), 400
            )
            return
        name = self.flow_cookie(state)
        signed = self.get_cookie(name)
        self.clear_cookie(name, path=_FLOW_PATH)
        raw = decode_signed_value(
            context.sessions.secret, name, signed, max_age_days=FLOW_SECONDS / 86400
        ) if signed else None  # fmt: skip
        flow = Flow.load(raw) if raw else None
        if flow is None:
            reason = "no flow cookie" if not signed else "flow cookie invalid or expired"
            self.failed(
                SignInFailed("This sign-in was not started here, or took too long.", reason), 400
            )
            return
        try:
            identity = await context.oidc.finish(flow, state, code, self.redirect_uri())
        except SignInFailed as exc:
            self.failed(exc)
            return
        self.audit(SIGN_IN, identity.name, "oidc", "", 302)
        self.start_session(identity)
        self.redirect(flow.next_path)


__all__ = [
    "OidcCallbackHandler",
    "OidcStartHandler",
    "SignInHandler",
    "public_url",
    "safe_next",
]
