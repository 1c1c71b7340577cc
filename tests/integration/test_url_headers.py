"""Every response header that carries a backend URL reaches the client as the proxy's
URL, like Location: real backend, real proxy, real HTTP on 127.0.0.1."""

import urllib.parse

import pytest

from handlers.config.sites import BackendSite
from tests.support import start_backend, start_proxy


@pytest.fixture(scope="module")
def stack(loop_thread):
    def headers(h):
        own = backend.url
        h.add_header("Link", f'<{own}/wp-json/>; rel="https://api.w.org/"')
        h.add_header("Link", f"<{own}/?p=5>; rel=shortlink, </style.css>; rel=preload; as=style")
        h.set_header("X-Pingback", f"{own}/xmlrpc.php")
        h.set_header("Content-Location", f"{own}/doc.en.html")
        h.set_header("Refresh", f"5; url={own}/next")
        origin = h.request.headers.get("Origin")
        if origin is not None:
            h.set_header("Access-Control-Allow-Origin", origin)
        h.finish("ok")

    def login_redirect(h):
        back = urllib.parse.quote(f"{backend.url}/wp-admin/", safe="")
        h.redirect(f"{backend.url}/wp-login.php?redirect_to={back}&reauth=1")

    def elsewhere(h):
        back = urllib.parse.quote(f"{backend.url}/x", safe="")
        h.redirect(f"https://sso.example/login?service={back}")

    backend = start_backend(
        loop_thread,
        "a",
        {"/headers": headers, "/wp-admin/": login_redirect, "/sso": elsewhere},
    )
    forward = {"a": BackendSite("a", backend.url, backend.netloc, [])}
    return start_proxy(loop_thread, forward), backend


def test_link_pingback_content_location_and_refresh_name_the_proxy(stack):
    proxy, backend = stack
    resp, _ = proxy.request("GET", "/.site.a/headers")
    assert resp.headers.get_all("Link") == [
        '</.site.a/wp-json/>; rel="https://api.w.org/"',
        "</.site.a/?p=5>; rel=shortlink, </.site.a/style.css>; rel=preload; as=style",
    ]
    assert resp.headers["X-Pingback"] == "/.site.a/xmlrpc.php"
    assert resp.headers["Content-Location"] == "/.site.a/doc.en.html"
    assert resp.headers["Refresh"] == "5; url=/.site.a/next"
    assert backend.url not in str(resp.headers)


def test_cors_allows_the_origin_the_browser_sent(stack):
    proxy, backend = stack
    mine = f"http://127.0.0.1:{proxy.port}"
    resp, _ = proxy.request("GET", "/.site.a/headers", headers={"Origin": mine})
    # The backend was told its own origin and echoed it; the browser hears its own.
    assert backend.seen[-1].header("Origin") == backend.url
    assert resp.headers["Access-Control-Allow-Origin"] == mine
    # A foreign origin is the backend's to judge, and what it answers is passed on.
    resp, _ = proxy.request("GET", "/.site.a/headers", headers={"Origin": "https://evil.example"})
    assert resp.headers["Access-Control-Allow-Origin"] == "https://evil.example"


def test_a_backend_url_inside_a_redirects_query_is_mapped_too(stack):
    proxy, backend = stack
    resp, _ = proxy.request("GET", "/.site.a/wp-admin/")
    assert resp.status == 302
    location = resp.headers["Location"]
    assert location == "/.site.a/wp-login.php?redirect_to=%2F.site.a%2Fwp-admin%2F&reauth=1"
    # Followed, the query goes back to the backend as it wrote it.
    proxy.request("GET", location)
    quoted = urllib.parse.quote(f"{backend.url}/wp-admin/", safe="")
    assert backend.seen[-1].uri == f"/wp-login.php?redirect_to={quoted}&reauth=1"


def test_a_redirect_to_another_host_keeps_its_query(stack):
    """A single sign-on server checks the service URL it is given against the backend's
    own: a redirect that leaves the proxy's sites is passed on as it is."""
    proxy, backend = stack
    resp, _ = proxy.request("GET", "/.site.a/sso")
    back = urllib.parse.quote(f"{backend.url}/x", safe="")
    assert resp.headers["Location"] == f"https://sso.example/login?service={back}"
