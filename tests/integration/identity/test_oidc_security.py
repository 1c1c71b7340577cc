"""What single sign-on must refuse at the callback, through the proxy: the provider's
real answer played twice, or brought by a browser that did not start the sign-in (no
flow cookie, a forged one, another sign-in's); a way back that leads off the proxy;
groups the provider no longer gives; a provider that says no. Each refusal leaves no
session and asks nothing of a backend. ID tokens that the provider did not make for
this sign-in are test_oidc_tokens.py's; the provider and the proxies are conftest.py's
security_world, shared with it."""

from __future__ import annotations

import http.cookiejar
import urllib.parse

import pytest

from tests.support.identity import Browser, refused, sign_in_through, started
from tests.support.identity import SecurityWorld as World
from tests.support.oidc_provider import sign_in, visit


@pytest.fixture(scope="module")
def world(security_world: World) -> World:
    """The provider, the stand-in issuer and the proxies signing in at each (conftest.py)."""
    return security_world


def test_a_replayed_callback_is_refused(world: World) -> None:
    """The provider's answer, with the flow cookie that went with it, signs in once: the
    same request again (an attacker who copied both) is refused, for the state was used."""
    browser = Browser(world.port)
    authorize, query = started(browser)
    flow = browser.cookie(f".proxy-oidc.{query['state'][:12]}")
    assert flow is not None
    callback = sign_in(authorize, "alice", "alice-pw")
    assert browser.open(callback).status == 302 and browser.cookie(".proxy-session") is not None

    replay = Browser(world.port)
    reply = replay.open(callback, headers={"Cookie": f"{flow.name}={flow.value}"})
    refused(world, replay, reply, 401, "state replayed")


@pytest.mark.parametrize("cookie", ["missing", "tampered", "another flow's"])
def test_a_callback_without_its_own_flow_cookie_is_refused(world: World, cookie: str) -> None:
    """The provider's answer, brought by a browser that did not start this sign-in (no
    flow cookie, a forged one, another sign-in's): 400 and no session. The answer is not
    spent by it: the browser that started the sign-in still completes it."""
    browser, other = Browser(world.port), Browser(world.port)  # other brings the answer
    authorize, query = started(browser)
    flow = browser.cookie(f".proxy-oidc.{query['state'][:12]}")
    assert flow is not None
    headers = {}
    if cookie == "tampered":
        value = flow.value.strip('"')
        headers["Cookie"] = f"{flow.name}={value[:-3]}{'abc' if value[-3:] != 'abc' else 'xyz'}"
    elif cookie == "another flow's":
        _, theirs = started(other)
        mine = other.cookie(f".proxy-oidc.{theirs['state'][:12]}")
        assert mine is not None
        headers["Cookie"] = f"{flow.name}={mine.value}"  # under this flow's name
    callback = sign_in(authorize, "alice", "alice-pw")
    reply = other.open(callback, headers=headers)
    reason = "no flow cookie" if cookie == "missing" else "flow cookie invalid or expired"
    refused(world, other, reply, 400, reason)
    before = world.upstream
    assert (browser.open(callback).status, browser.navigate("/.site.wiki/").status) == (302, 200)
    assert world.upstream == before + 1


@pytest.mark.parametrize(
    "next_path",
    [
        "//evil.example/x",
        "https://evil.example",
        "/\\evil.example",
        "evil.example",
        # A browser drops a tab or a line break from a URL (WHATWG URL parsing):
        # "/<tab>/evil.example" would take it to //evil.example.
        "/\t/evil.example",
        "/\n/evil.example",
    ],
)
def test_the_way_back_never_leaves_the_proxy(world: World, next_path: str) -> None:
    """A ``next`` that names another host (or would, once a browser has dropped the tab
    from it) ends at the site list, by the login page or straight to the start."""
    browser, provider_jar = Browser(world.port), http.cookiejar.CookieJar()
    login = browser.navigate(f"/.proxy/login?{urllib.parse.urlencode({'next': next_path})}")
    assert (login.status, login.location) == (302, "/.proxy/oidc/start?next=%2F.proxy%2F")
    reply = sign_in_through(browser, provider_jar, "alice", "alice-pw", next_path)
    assert (reply.status, reply.location) == (302, "/.proxy/"), reply


def test_a_group_removed_at_the_provider_counts_at_the_next_sign_in(world: World) -> None:
    """The provider's groups are read at each sign-in: out of staff there, out of the
    wiki here from the next sign-in on, with nothing sent to it."""
    world.provider.set_account("dave", "dave-pw", groups=["staff", "ops"])
    provider_jar = http.cookiejar.CookieJar()
    browser = Browser(world.port)
    assert sign_in_through(browser, provider_jar, "dave", "dave-pw").status == 302
    assert browser.navigate("/.site.wiki/").status == 200
    assert world.backend.seen[-1].header("X-Forwarded-Groups") == "ops,staff"

    world.provider.set_account("dave", "dave-pw", groups=["ops"])
    again = Browser(world.port)
    # Signed in at the provider still: no password asked (a form would refuse this one).
    assert sign_in_through(again, provider_jar, "dave", "not-asked").status == 302
    before = world.upstream
    assert again.navigate("/.site.wiki/").status == 403
    assert world.upstream == before


@pytest.mark.parametrize("error", ["access_denied", "login_required"])
def test_a_provider_that_says_no_gets_a_401_page(world: World, error: str) -> None:
    """The provider's error comes back to the callback instead of a code: the user
    refused (access_denied, which this provider has no button for, so the answer is
    made here) or cannot be signed in silently (login_required: the real provider's
    answer to prompt=none without a session of its own)."""
    browser = Browser(world.port)
    authorize, query = started(browser)
    if error == "access_denied":
        answer = {"error": error, "error_description": "the user said no", "state": query["state"]}
        callback = f"/.proxy/oidc/callback?{urllib.parse.urlencode(answer)}"
        reason = "provider: the user said no"
    else:
        landing = visit(f"{authorize}&prompt=none", http.cookiejar.CookieJar())
        callback = landing.location or ""
        assert callback.startswith(f"http://127.0.0.1:{world.port}/.proxy/oidc/callback?"), landing
        assert f"error={error}" in callback and f"state={query['state']}" in callback
        reason = "provider: End-User authentication is required"
    reply = browser.open(callback)
    assert "Sign-in failed" in reply.body and "/.proxy/login" in reply.body
    refused(world, browser, reply, 401, reason)


@pytest.mark.parametrize("state", ["a b", "a;b", "a,b", "\u00e9" * 20, "short"])
def test_a_state_this_proxy_cannot_have_made_is_a_400(world: World, state: str) -> None:
    """A state goes into a cookie's name and a comparison: one that is not of the shape
    this proxy makes is refused plainly, never a 500."""
    browser = Browser(world.port)
    query = urllib.parse.urlencode({"state": state, "code": "x"})
    reply = browser.open(f"/.proxy/oidc/callback?{query}")
    assert reply.status == 400 and b"Traceback" not in reply.body.encode()
