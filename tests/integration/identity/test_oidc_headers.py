"""What a client says of itself never reaches a backend: X-Forwarded-User, -Email and
-Groups sent by a client, in any case and in the underscore spellings that CGI and WSGI
servers read as the same header, are dropped on every route that picks a site (its
prefix, a page's Referer, the site cookie, a WebSocket handshake). A site that asks is
told the signed-in user's values and others nothing; without a session the forged
headers reach nothing at all. The provider, the proxies and the backend are conftest.py's
sign_in_world, shared with test_oidc_signin.py."""

from __future__ import annotations

import http.cookiejar
import urllib.error
import urllib.request

import pytest
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from tests.support import LoopThread
from tests.support.identity import (
    IDENTITY,
    Browser,
    NoRedirects,
    sign_in_through,
    upstream_identity,
)
from tests.support.identity import SignInWorld as World

FORGED = {
    "X-Forwarded-User": "mallory",
    "x-forwarded-email": "mallory@evil.example",
    "X-FORWARDED-GROUPS": "admins,hr",
}


@pytest.fixture(scope="module")
def world(sign_in_world: World) -> World:
    """The provider and the proxies signing in there (conftest.py)."""
    return sign_in_world


@pytest.fixture(scope="module")
def alice(world: World) -> Browser:
    """A browser signed in as alice (staff, wiki-editors) through the provider."""
    browser = Browser(world.proxy_port)
    reply = sign_in_through(browser, http.cookiejar.CookieJar(), "alice", "alice-pw")
    assert reply.status == 302 and browser.cookie(".proxy-session") is not None, reply
    return browser


def websocket_handshake(
    loop_thread: LoopThread, port: int, path: str, headers: dict[str, str]
) -> int:
    """Open a WebSocket through the proxy with ``headers``, exchange a message, close;
    the handshake's status (101, or the proxy's refusal)."""

    async def go() -> int:
        request = HTTPRequest(
            f"ws://127.0.0.1:{port}{path}",
            headers={"Origin": f"http://127.0.0.1:{port}", **headers},
        )
        try:
            connection = await websocket_connect(request)
        except HTTPClientError as error:
            return error.code
        await connection.write_message("ping")
        assert await connection.read_message() == "ping"
        connection.close()
        return 101

    return loop_thread.run(go(), timeout=20)


def send(loop_thread: LoopThread, route: str, site: str, port: int, session: str | None) -> int:
    """One request with forged identity headers to ``site`` by ``route``; its status."""
    cookies = [session] if session else []
    headers = dict(FORGED)
    if route == "websocket":
        if cookies:
            headers["Cookie"] = "; ".join(cookies)
        return websocket_handshake(loop_thread, port, f"/.site.{site}/ws", headers)
    if route == "prefix":
        target = f"/.site.{site}/forged?by=prefix"
    elif route == "referer":
        # A page's script asking for a root-relative URL: not a navigation.
        target = "/forged?by=referer"
        headers["Referer"] = f"http://127.0.0.1:{port}/.site.{site}/x"
        headers["Accept"] = "application/json"
    else:
        target = "/forged?by=cookie"
        cookies.append(f".site={site}")
    if cookies:
        headers["Cookie"] = "; ".join(cookies)
    request = urllib.request.Request(f"http://127.0.0.1:{port}{target}", headers=headers)
    opener = urllib.request.build_opener(NoRedirects)
    try:
        with opener.open(request, timeout=20) as response:
            return response.status
    except urllib.error.HTTPError as error:
        with error:
            return error.code


ROUTES = ("prefix", "referer", "cookie", "websocket")


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(("site", "told"), [("wiki", True), ("open", False)])
def test_forged_identity_headers_are_removed(
    world: World, loop_thread: LoopThread, alice: Browser, route: str, site: str, told: bool
) -> None:
    """Whatever route picks the site, what a client sends as X-Forwarded-User, -Email or
    -Groups (in any case) is dropped: a site that asks is told the signed-in user's
    values, the others nothing."""
    before = world.upstream
    status = send(loop_thread, route, site, world.proxy_port, alice.session)
    assert status == (101 if route == "websocket" else 200)
    assert world.upstream == before + 1
    seen = world.backend.seen[-1]
    assert seen.uri.endswith("/ws" if route == "websocket" else f"/forged?by={route}")
    expected = ("alice", "alice@example.org", "staff,wiki-editors") if told else (None,) * 3
    assert upstream_identity(seen) == expected
    assert not any("mallory" in v or "admins" in v for _, v in seen.headers)


@pytest.mark.parametrize("site", ["wiki", "open"])
def test_underscore_spellings_of_identity_headers_are_removed_too(
    world: World, alice: Browser, site: str
) -> None:
    """CGI and WSGI servers (gunicorn before 22, uWSGI, many PHP setups) read
    X_Forwarded_User as X-Forwarded-User: both become HTTP_X_FORWARDED_USER. Passed on,
    the client's spelling names the user to a site told nothing, and joins the proxy's
    value at one that is (oauth2-proxy's CVE-2025-64484)."""
    before = world.upstream
    headers = {
        "Cookie": alice.session,
        "X_Forwarded_User": "mallory",
        "X-Forwarded_Email": "mallory@evil.example",
        "x_forwarded_groups": "admins",
    }
    reply = alice.open(f"/.site.{site}/underscores", headers=headers)
    assert reply.status == 200 and world.upstream == before + 1
    seen = world.backend.seen[-1]
    as_cgi = {name.upper().replace("-", "_") for name, _ in seen.headers}
    told = {name.upper().replace("-", "_") for name in IDENTITY} & as_cgi
    assert told == (
        {"X_FORWARDED_USER", "X_FORWARDED_EMAIL", "X_FORWARDED_GROUPS"} if site == "wiki" else set()
    )
    assert not any("mallory" in v or "admins" in v for _, v in seen.headers), seen.headers


@pytest.mark.parametrize("route", ROUTES)
def test_forged_identity_headers_without_anybody_signed_in(
    world: World, loop_thread: LoopThread, route: str
) -> None:
    """Nobody signed in: on the proxy that asks for a sign-in the forged headers get
    nowhere at all; on one without any sign-in the request goes through, stripped."""
    before = world.upstream
    status = send(loop_thread, route, "wiki", world.proxy_port, None)
    assert status in (302, 401) and world.upstream == before
    status = send(loop_thread, route, "wiki", world.plain_port, None)
    assert status == (101 if route == "websocket" else 200)
    assert world.upstream == before + 1
    assert upstream_identity(world.backend.seen[-1]) == (None, None, None)
