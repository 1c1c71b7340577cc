"""Single sign-on through the proxy as a user meets it, in the system Chromium: signing in
at a real OpenID Connect provider's own page, or with a real LDAP directory through the
proxy's login form; landing on the page asked for; a site list and access cut to the
user's groups; the identity a site asked for reaching its backend; and a sign-out that
really locks the door again (at the provider too).

The lower layers have tests of their own (the provider and slapd harnesses, the proxy's
handlers without a browser); these prove that the pieces hold together where it counts:
redirects, cookies and forms as Chromium handles them."""

from __future__ import annotations

from collections.abc import Iterator
from html import escape
from typing import Any

import pytest

from filters.names import SESSION_COOKIE
from handlers.config.sites import BackendSite
from tests.support import Backend, chromium, free_port, start_backend, start_proxy
from tests.support.oidc_provider import OidcProvider
from tests.support.slapd import Directory

SECRET = "a cookie secret for the sign-in tests"
# Each user is in staff and editors, not in hr: wiki and notes are theirs, hr is not.
GROUPS = ["editors", "staff"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium for the module; each test signs in from a context of its own, so no
    cookie of one reaches the other."""
    with chromium() as b:
        yield b


def greeting(handler: Any) -> None:
    """The wiki's page: it greets whoever the proxy says is signed in, so the browser's
    page itself shows that the identity reached the backend."""
    user = handler.request.headers.get("X-Forwarded-User", "nobody")
    handler.set_header("Content-Type", "text/html; charset=utf-8")
    handler.finish(
        f"<!doctype html><title>wiki</title><h1 id=hello>Wiki page for {escape(user)}</h1>"
    )


def start_sites(loop_thread: Any) -> tuple[dict[str, BackendSite], dict[str, Backend]]:
    """Three sites, each on a backend of its own (so that "hr saw nothing" means it):
    wiki is given the identity, notes is for editors, hr for a group nobody here is in."""
    backends = {
        "wiki": start_backend(loop_thread, "wiki", routes={"/page": greeting}),
        "notes": start_backend(loop_thread, "notes"),
        "hr": start_backend(loop_thread, "hr"),
    }
    sites = {
        "wiki": BackendSite("wiki", backends["wiki"].url, groups=["staff"], pass_identity=True),
        "notes": BackendSite("notes", backends["notes"].url, groups=["editors"]),
        "hr": BackendSite("hr", backends["hr"].url, groups=["hr"]),
    }
    return sites, backends


def page_requests(backend: Backend) -> list[Any]:
    """What the wiki's backend got for /page (the site list's health checks ask for /)."""
    return [seen for seen in backend.seen if seen.uri == "/page"]


def track_navigations(page: Any) -> list[str]:
    """The URLs the page's main frame is sent to, redirects included, in order."""
    urls: list[str] = []

    def on_request(request: Any) -> None:
        if request.is_navigation_request() and request.frame == page.main_frame:
            urls.append(request.url)

    page.on("request", on_request)
    return urls


def check_signed_in_story(page: Any, origin: str, backends: dict[str, Backend], user: str) -> None:
    """Once signed in and on the wiki page: the identity at the backend, the site list
    of the user's groups, and a 403 from another group's site that asks nothing of it."""
    page.wait_for_selector("#hello")
    assert page.url == origin + "/.site.wiki/page"
    assert page.inner_text("#hello") == f"Wiki page for {user}"
    seen = page_requests(backends["wiki"])
    assert len(seen) == 1, [s.uri for s in backends["wiki"].seen]
    assert seen[0].header("X-Forwarded-User") == user
    assert seen[0].header("X-Forwarded-Email") == f"{user}@example.org"
    assert seen[0].header("X-Forwarded-Groups") == ",".join(GROUPS)

    page.goto(origin + "/.proxy/")
    page.wait_for_selector("[data-site]")
    names = page.eval_on_selector_all("[data-site]", "rows => rows.map(r => r.dataset.site)")
    assert names == ["wiki", "notes"]
    assert page.inner_text("#user") == user

    response = page.goto(origin + "/.site.hr/")
    assert response is not None and response.status == 403
    assert page.inner_text("h1") == "Forbidden"
    assert backends["hr"].seen == []


def session_cookies(page: Any, origin: str) -> list[str]:
    return [c["name"] for c in page.context.cookies(origin) if c["name"] == SESSION_COOKIE]


def log_in(page: Any, origin: str, name: str, password: str) -> int:
    """Submit the proxy's login form; the status of its POST (401 refused, 302 in), so a
    failure says what the proxy answered rather than which element never showed."""
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", password)
    posted = origin + "/.proxy/login"
    with page.expect_response(lambda r: r.url == posted and r.request.method == "POST") as answer:
        page.click("button")
    return answer.value.status


def test_oidc_sign_in_at_the_provider_and_out_of_both(loop_thread, browser, tmp_path):
    """The password goes only to the provider's page, yet the user lands where they asked;
    and signing out must end the provider's session too, or the next visit would be let
    straight back in without a password."""
    sites, backends = start_sites(loop_thread)
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    client = {
        "client_id": "web-proxy",
        "client_secret": "the proxy's secret at the provider",
        "redirect_uris": [origin + "/.proxy/oidc/callback"],
        "post_logout_redirect_uris": [origin + "/.proxy/login"],
    }
    alice = {"password": "alice-pw", "email": "alice@example.org", "groups": GROUPS}
    with OidcProvider(tmp_path, [client], {"alice": alice}) as provider:
        start_proxy(
            loop_thread,
            sites,
            port=port,
            cookie_secret=SECRET,
            oidc_issuer=provider.issuer,
            oidc_client_id=client["client_id"],
            oidc_client_secret=client["client_secret"],
            oidc_scopes=("openid", "email", "profile", "groups"),
        )
        context = browser.new_context()
        context.set_default_timeout(10_000)  # every step here takes well under a second
        try:
            page = context.new_page()
            # Asking for a page leads to the provider's own login page, not the proxy's.
            page.goto(origin + "/.site.wiki/page")
            page.wait_for_selector("#login")
            assert page.url.startswith(provider.issuer + "/"), page.url
            page.fill("#login", "alice")
            page.fill("#password", "alice-pw")
            page.click("#submit")
            check_signed_in_story(page, origin, backends, "alice")

            # Logging out goes on to the provider, which asks to confirm.
            page.goto(origin + "/.proxy/")
            page.click(".who button")
            page.wait_for_selector("#logout-confirm")
            assert page.url.startswith(provider.issuer + "/"), page.url
            navigations = track_navigations(page)
            page.click("#logout-confirm")
            # Back at the proxy's login, which sends the browser to the provider: its
            # session is over, so it asks for the password instead of letting it through.
            page.wait_for_selector("#login")
            assert page.url.startswith(provider.issuer + "/"), page.url
            assert any(u.startswith(origin + "/.proxy/login") for u in navigations), navigations
            assert session_cookies(page, origin) == []

            # The site too leads to the provider's form, not silently in.
            page.goto(origin + "/.site.wiki/page")
            page.wait_for_selector("#login")
            assert page.url.startswith(provider.issuer + "/"), page.url
            assert len(page_requests(backends["wiki"])) == 1
        finally:
            context.close()


def test_ldap_sign_in_through_the_login_page_and_out(loop_thread, browser, tmp_path):
    """The directory's password check and groups, through the proxy's own form, with the
    settings a deployment starts from (ldap_timeout and the rest left at their defaults)."""
    sites, backends = start_sites(loop_thread)
    with Directory(tmp_path) as directory:
        directory.add_user("bob", "bob-pw", mail="bob@example.org", cn="Bob", groups=GROUPS)
        proxy = start_proxy(
            loop_thread,
            sites,
            cookie_secret=SECRET,
            ldap_url=directory.url,
            ldap_ca_file=directory.ca_file,
            ldap_user_dn=f"uid={{name}},{directory.people_dn}",
            ldap_group_base=directory.groups_dn,
        )
        origin = f"http://127.0.0.1:{proxy.port}"
        context = browser.new_context()
        context.set_default_timeout(10_000)  # every step here takes well under a second
        try:
            page = context.new_page()
            page.goto(origin + "/.site.wiki/page")
            assert page.url.startswith(origin + "/.proxy/login"), page.url
            assert page.inner_text("h1") == "Log in"
            assert log_in(page, origin, "bob", "not bob's password") == 401
            assert page.inner_text("#error") == "Wrong name or password."
            assert session_cookies(page, origin) == []
            assert log_in(page, origin, "bob", "bob-pw") == 302
            check_signed_in_story(page, origin, backends, "bob")

            page.goto(origin + "/.proxy/")
            page.click(".who button")
            page.wait_for_url(origin + "/.proxy/login")
            assert page.inner_text("h1") == "Log in"
            assert session_cookies(page, origin) == []

            page.goto(origin + "/.site.wiki/page")
            assert page.url.startswith(origin + "/.proxy/login"), page.url
            assert page.inner_text("h1") == "Log in"
            assert len(page_requests(backends["wiki"])) == 1
        finally:
            context.close()
