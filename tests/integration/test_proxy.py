"""The proxy over real HTTP: real backends and the real proxy on 127.0.0.1."""

import asyncio
import hashlib
import json
import os
import re

import pytest

from filters.rules import SubsFilterRules
from handlers.config.sites import BackendSite
from tests.support import free_port, start_backend, start_proxy

PNG_WITH_URL = b"\x89PNG\r\n\x1a\n" + b"\x00\xff" * 50 + b"http://127.0.0.1:1/img" + b"\x00" * 10
BIG = os.urandom(5 * 1024 * 1024 + 17)


def _routes(own_url):
    def redirect(h):
        h.set_status(int(h.get_argument("status", "302")))
        h.set_header("Location", h.get_argument("to"))
        h.finish()

    def cookies(h):
        h.add_header("Set-Cookie", "sid=abc; Domain=127.0.0.1; Path=/; HttpOnly")
        h.add_header("Set-Cookie", "pref=a,b; Path=/; Expires=Wed, 21 Oct 2037 07:28:00 GMT")
        h.finish("ok")

    async def slow(h):
        await asyncio.sleep(3)
        h.finish("late")

    def html(h):
        h.set_header("Content-Type", "text/html; charset=utf-8")
        h.finish(f'<a href="{own_url()}/page">x</a> <img src="{own_url()}/i.png"> café')

    def png(h):
        h.set_header("Content-Type", "image/png")
        h.finish(PNG_WITH_URL.replace(b"http://127.0.0.1:1", own_url().encode()))

    def status(code):
        def f(h):
            h.set_status(code)
            h.finish()

        return f

    def big(h):
        h.set_header("Content-Type", "application/octet-stream")
        h.finish(BIG)

    def hop(h):
        h.set_header("X-Hop", "secret")
        h.set_header("Connection", "X-Hop")
        h.set_header("Keep-Alive", "timeout=5")
        h.finish("hop")

    def sized_head(h):
        # Not a type the proxy rewrites: HEAD then carries the backend's length (for a
        # rewritable one it has none, as tests/test_head.py shows).
        h.set_header("Content-Type", "application/octet-stream")
        h.set_header("Content-Length", "1234")
        if h.request.method == "HEAD":
            h.flush()
            h.finish()
        else:
            h.finish(b"x" * 1234)

    def nolength(h):
        h.set_header("Content-Type", "application/octet-stream")
        h.flush()
        if h.request.method != "HEAD":
            h.write("streamed without a length")
        h.finish()

    def refresh(h):
        h.set_header("Refresh", f"0; url={own_url()}/after")
        h.finish("wait")

    return {
        "/nolength": nolength,
        "/refresh": refresh,
        "/redirect": redirect,
        "/cookies": cookies,
        "/slow": slow,
        "/html": html,
        "/png": png,
        "/nocontent": status(204),
        "/notmodified": status(304),
        "/big": big,
        "/hop": hop,
        "/sized": sized_head,
    }


@pytest.fixture(scope="module")
def stack(loop_thread):
    holder = {}
    a = start_backend(loop_thread, "a", _routes(lambda: holder["a"].url))
    b = start_backend(loop_thread, "b", _routes(lambda: holder["b"].url))
    outsider = start_backend(loop_thread, "outsider")  # never in any site table
    holder.update(a=a, b=b)
    rule = SubsFilterRules(".", re.escape(a.url), "/.site.a")
    sites = {
        "a": BackendSite("a", a.url, a.netloc, [rule]),
        "b": BackendSite("b", b.url, b.netloc, []),
        "down": BackendSite("down", f"http://127.0.0.1:{free_port()}", None, []),
        "slow": BackendSite("slow", a.url, None, [], timeout=1),
        "aware": BackendSite("aware", b.url, None, [], knows_proxy=True),
    }
    proxy = start_proxy(loop_thread, sites, clear_old_cookies=True)
    keep = start_proxy(loop_thread, sites, clear_old_cookies=False)
    return {"a": a, "b": b, "outsider": outsider, "proxy": proxy, "keep": keep}


def last(backend):
    assert backend.seen, f"backend {backend.name} received nothing"
    return backend.seen[-1]


def set_cookies(resp):
    return resp.headers.get_all("Set-Cookie") or []


def test_prefix_reaches_backend_and_sets_cookie(stack):
    resp, data = stack["proxy"].request("GET", "/.site.b/x/y?q=1&r=%20")
    assert resp.status == 200
    body = json.loads(data)
    assert body["backend"] == "b" and body["uri"] == "/x/y?q=1&r=%20"
    assert ".site=b; Path=/; HttpOnly; SameSite=Lax" in set_cookies(resp)


def test_cookie_routes_unprefixed_requests(stack):
    resp, data = stack["proxy"].request("GET", "/api/v1?x=1", headers={"Cookie": "sid=1; .site=b"})
    body = json.loads(data)
    assert (resp.status, body["backend"], body["uri"]) == (200, "b", "/api/v1?x=1")
    assert not any(c.startswith(".site=") for c in set_cookies(resp))
    assert dict(body["headers"])["Cookie"] == "sid=1"


NAVIGATE = {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}


def test_switching_sites_clears_the_old_sites_fallback_cookies(stack):
    cookie = ".site=b; .site~b~sid=1; .site~a~sid=2; .site~a~theme=x"
    resp, _data = stack["proxy"].request("GET", "/.site.a/", headers={**NAVIGATE, "Cookie": cookie})
    cookies = set_cookies(resp)
    assert ".site=a; Path=/; HttpOnly; SameSite=Lax" in cookies
    # b's copies for the cookie fallback are expired; a's own cookies are untouched.
    expired = [c.split("=")[0] for c in cookies if "Max-Age=0" in c]
    assert expired == [".site~b~sid"]
    # a gets its own cookies only, by their own names.
    assert last(stack["a"]).header("Cookie") == "sid=2; theme=x"


def test_switching_keeps_cookies_when_not_configured(stack):
    resp, _ = stack["keep"].request(
        "GET", "/.site.a/", headers={**NAVIGATE, "Cookie": ".site=b; .site~b~sid=1; sid=1"}
    )
    assert ".site=a; Path=/; HttpOnly; SameSite=Lax" in set_cookies(resp)
    assert [c for c in set_cookies(resp) if "Max-Age=0" in c] == []
    assert last(stack["a"]).header("Cookie") == "sid=1"


def test_same_site_prefix_does_not_reset_cookie(stack):
    resp, _ = stack["proxy"].request(
        "GET", "/.site.a/", headers={**NAVIGATE, "Cookie": ".site=a; sid=1"}
    )
    assert set_cookies(resp) == []
    assert last(stack["a"]).header("Cookie") == "sid=1"


@pytest.mark.parametrize(
    "headers, switches",
    [
        (NAVIGATE, True),
        ({"Sec-Fetch-Mode": "navigate"}, True),
        # A page's image, script, fetch, frame or favicon never switches sites.
        ({"Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "image"}, False),
        ({"Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty"}, False),
        ({"Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "script"}, False),
        ({"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "iframe"}, False),
        # Without Sec-Fetch-* (plain http to a host that is not localhost): a request
        # for HTML, or one that names no page (a typed URL, curl), switches; a page's
        # subresource (it names the page in Referer) does not.
        ({"Accept": "text/html,application/xhtml+xml,*/*;q=0.8", "Referer": "http://x/"}, True),
        ({}, True),
        ({"Accept": "*/*"}, True),
        ({"Accept": "image/avif,image/webp,*/*", "Referer": "http://x/.site.b/"}, False),
        ({"Accept": "*/*", "Referer": "http://x/.site.b/"}, False),
    ],
)
def test_only_navigations_switch_sites(stack, headers, switches):
    resp, data = stack["proxy"].request(
        "GET", "/.site.a/favicon.ico", headers={**headers, "Cookie": ".site=b; .site~b~s=1"}
    )
    assert resp.status == 200 and json.loads(data)["backend"] == "a"
    switched = ".site=a; Path=/; HttpOnly; SameSite=Lax" in set_cookies(resp)
    assert switched is switches
    if not switches:
        assert set_cookies(resp) == []  # nor are b's cookies cleared


def test_referer_routes_a_pages_unprefixed_requests(stack):
    """A page of site a that asks for /x means a's /x, even when another tab has moved
    the .site cookie to b."""
    proxy = stack["proxy"]
    here = f"127.0.0.1:{proxy.port}"
    page = f"http://{here}/.site.a/app/page"
    fetch = {"Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty", "Cookie": ".site=b"}
    resp, data = proxy.request("POST", "/api/x?y=1", b"{}", {**fetch, "Referer": page})
    body = json.loads(data)
    assert (resp.status, body["backend"], body["uri"]) == (200, "a", "/api/x?y=1")
    assert set_cookies(resp) == []
    # A navigation that way (location.href = "/x" in a script) is sent to the prefix.
    resp, _ = proxy.request("GET", "/next?q=1", headers={**NAVIGATE, "Referer": page})
    assert (resp.status, resp.headers["Location"]) == (302, "/.site.a/next?q=1")
    # Another host's page, or a page outside any prefix, is no evidence: the cookie
    # decides, as before.
    for referer in ("http://elsewhere.example/.site.a/", f"http://{here}/.proxy/"):
        resp, data = proxy.request("GET", "/api/x", headers={**fetch, "Referer": referer})
        assert json.loads(data)["backend"] == "b", referer
    # A Referer naming no configured site falls back to the cookie too.
    resp, data = proxy.request(
        "GET", "/x", headers={**fetch, "Referer": f"http://{here}/.site.zz/"}
    )
    assert json.loads(data)["backend"] == "b"


def test_site_list_and_health(stack):
    for path in ("/", "/.proxy/", "/.proxy"):
        resp, data = stack["proxy"].request("GET", path)
        assert resp.status == 200, path
        assert b"/.site.a/" in data and b"/.site.b/" in data
    resp, data = stack["proxy"].request("GET", "/.proxy/health")
    assert (resp.status, data) == (200, b"ok\n")


def test_missing_slash_after_prefix_redirects(stack):
    resp, _ = stack["proxy"].request("GET", "/.site.b?x=1")
    assert resp.status in (301, 302) and resp.headers["Location"] == "/.site.b/?x=1"


BAD_REQUESTS = [
    ("GET", "/.site.zz/", {}),
    ("GET", "/.site./", {}),
    ("GET", "/x", {"Cookie": ".site=../x"}),
    ("GET", "/x", {"Cookie": ".site=zz"}),
    ("GET", "/", {"Cookie": ".site=zz"}),
]


@pytest.mark.parametrize("method, target, headers", BAD_REQUESTS)
def test_unknown_site_is_404_and_reaches_nobody(stack, method, target, headers):
    before = {k: len(stack[k].seen) for k in ("a", "b", "outsider")}
    resp, data = stack["proxy"].request(method, target, headers=headers)
    assert resp.status == 404
    assert b"/.proxy/" in data and b"Traceback" not in data
    assert {k: len(stack[k].seen) for k in before} == before


def test_hostile_targets_never_reach_an_unlisted_backend(stack):
    outsider = stack["outsider"]
    proxy = stack["proxy"]
    o = outsider.netloc
    attempts = [
        ("GET", f"/.site.a@{o}/", {}),
        ("GET", f"/.site.{o}/", {}),
        ("GET", "/x", {"Cookie": f".site=http://{o}/"}),
        ("GET", "/x", {"Cookie": f".site={o}"}),
        ("GET", "/x", {"Host": o, "Cookie": ".site=zz"}),
    ]
    for method, target, headers in attempts:
        resp, _ = proxy.request(method, target, headers=headers)
        assert resp.status == 404, target
    # Absolute-form request lines, with and without a valid site cookie.
    for cookie in (b"", b"Cookie: .site=a\r\n"):
        answer = proxy.raw(
            f"GET http://{o}/ HTTP/1.1\r\nHost: {o}\r\n".encode()
            + cookie
            + b"Connection: close\r\n\r\n"
        )
        assert answer.startswith(b"HTTP/1.1 400 "), answer[:80]
    # A Host header naming the outsider, with a valid cookie: still site a, via its URL.
    resp, data = proxy.request("GET", "/who", headers={"Host": o, "Cookie": ".site=b"})
    assert json.loads(data)["backend"] == "b"
    assert outsider.seen == []


def test_request_headers_name_the_backend_not_the_proxy(stack):
    """Destination, If, Origin and Referer as the backend would get them from a client
    talking to it directly: through the prefix and through the cookie alike."""
    proxy, b = stack["proxy"], stack["b"]
    here = f"127.0.0.1:{proxy.port}"
    for path, cookie, page in (
        ("/.site.b/doc", "", f"http://{here}/.site.b/list?x=1"),
        ("/doc", ".site=b", f"http://{here}/list?x=1"),  # reached through the cookie
    ):
        proxy.request(
            "COPY",
            path,
            headers={
                "Cookie": cookie,
                "Destination": f"http://{here}/.site.b/copy%20of%2Edoc",
                "If": f'<http://{here}/.site.b/doc> (["e1"] <opaquelocktoken:t>)',
                "Origin": f"http://{here}",
                "Referer": page,
            },
        )
        seen = last(b)
        assert seen.header("Destination") == f"{b.url}/copy%20of%2Edoc"
        assert seen.header("If") == f'<{b.url}/doc> (["e1"] <opaquelocktoken:t>)'
        assert seen.header("Origin") == b.url
        assert seen.header("Referer") == f"{b.url}/list?x=1"
    # Another configured site's URL becomes that site's backend URL (the backend then
    # refuses a cross-server COPY itself); other hosts' URLs stay as they are.
    proxy.request(
        "COPY",
        "/.site.b/doc",
        headers={"Destination": f"http://{here}/.site.a/x", "Origin": "http://evil.example"},
    )
    seen = last(b)
    assert seen.header("Destination") == f"{stack['a'].url}/x"
    assert seen.header("Origin") == "http://evil.example"


def test_knows_proxy_leaves_the_proxys_urls_in_request_headers(stack):
    proxy, b = stack["proxy"], stack["b"]
    here = f"127.0.0.1:{proxy.port}"
    headers = {"Origin": f"http://{here}", "Referer": f"http://{here}/.site.aware/p"}
    proxy.request("POST", "/.site.aware/form", b"x=1", headers)
    seen = last(b)
    assert (seen.header("Origin"), seen.header("Referer")) == (
        headers["Origin"],
        headers["Referer"],
    )
    assert seen.header("X-Forwarded-Host") == here


@pytest.mark.parametrize("target", ["/.site.b/dir/#frag", "/.site.b/#", "/x#y"])
def test_a_fragment_in_the_target_is_refused(stack, target):
    before = len(stack["b"].seen)
    answer = stack["proxy"].raw(
        f"DELETE {target} HTTP/1.1\r\nHost: p\r\nCookie: .site=b\r\n\r\n".encode()
    )
    assert answer.startswith(b"HTTP/1.1 400 ") and b"fragment" in answer
    assert len(stack["b"].seen) == before


def test_escapes_keep_their_case(stack):
    target = "/a/%2e%2E/x%2fy%7e/%c3%A9?q=%2f%aB"
    answer = stack["proxy"].raw(
        f"GET /.site.b{target} HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n".encode()
    )
    assert answer.startswith(b"HTTP/1.1 200")
    assert last(stack["b"]).uri == target


def test_path_and_query_reach_backend_byte_exact(stack):
    target = "/a%2Fb/../c/./d;p=1?x=%20y&z=a+b&e=%E4%B8%AD&&"
    answer = stack["proxy"].raw(
        f"GET /.site.b{target} HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n".encode()
    )
    assert answer.startswith(b"HTTP/1.1 200")
    assert last(stack["b"]).uri == target


@pytest.mark.parametrize(
    "method, body",
    [
        ("GET", None),
        ("POST", b"a=1&b=2"),
        ("PUT", b"\x00\x01binary\xff"),
        ("PATCH", None),
        ("PATCH", b'{"x":1}'),
        ("DELETE", None),
        ("DELETE", b"delete-body"),
        ("OPTIONS", None),
        ("PROPFIND", b"<propfind/>"),
        ("POST", b""),
    ],
)
def test_methods_and_bodies(stack, method, body):
    resp, _data = stack["proxy"].request(method, "/.site.b/m", body=body)
    assert resp.status == 200
    seen = last(stack["b"])
    assert seen.method == method
    assert seen.body == (body or b"")


def test_head_carries_upstream_headers_without_body(stack):
    resp, data = stack["proxy"].request("HEAD", "/.site.b/sized")
    assert resp.status == 200 and data == b""
    assert resp.headers["Content-Length"] == "1234"
    assert last(stack["b"]).method == "HEAD"


def test_head_without_length_gets_none_invented(stack):
    answer = stack["proxy"].raw(
        b"HEAD /.site.b/nolength HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n"
    )
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and body == b""
    assert b"content-length" not in head.lower()


def test_unknown_length_body_is_chunked_through(stack):
    resp, data = stack["proxy"].request("GET", "/.site.b/nolength")
    assert data == b"streamed without a length"
    assert resp.headers.get("Content-Length") is None
    assert resp.headers.get("Transfer-Encoding") == "chunked"


def test_refresh_header_rewritten(stack):
    resp, _ = stack["proxy"].request("GET", "/.site.a/refresh")
    assert resp.headers["Refresh"] == "0; url=/.site.a/after"


def test_trace_and_connect_are_refused(stack):
    before = len(stack["b"].seen)
    resp, _ = stack["proxy"].request("TRACE", "/.site.b/")
    assert resp.status == 405
    assert len(stack["b"].seen) == before


def test_upstream_request_headers(stack):
    _resp, data = stack["proxy"].request(
        "GET",
        "/.site.b/h",
        headers={
            "Host": "public.example:8000",
            "Connection": "keep-alive, X-Drop",
            "X-Drop": "1",
            "X-Keep": "2",
            "X-Forwarded-For": "203.0.113.9",
        },
    )
    h = dict(json.loads(data)["headers"])
    b = stack["b"]
    assert h["Host"] == b.netloc
    assert "X-Drop" not in h and h["X-Keep"] == "2"
    # The test client is on 127.0.0.1, which the default trusted_proxies trusts.
    assert h["X-Forwarded-For"] == "203.0.113.9, 127.0.0.1"
    assert h["X-Real-Ip"] == "127.0.0.1"
    assert h["X-Forwarded-Proto"] == "http"
    assert h["X-Forwarded-Host"] == "public.example:8000"
    assert h["X-Forwarded-Prefix"] == "/.site.b"
    assert "User-Agent" not in h or "pycurl" not in h["User-Agent"]


def test_location_rewritten_for_any_configured_backend(stack):
    a, b = stack["a"], stack["b"]
    cases = {
        f"{a.url}/next?x=1": "/.site.a/next?x=1",
        f"{b.url}/x": "/.site.b/x",
        f"//{a.netloc}/y": "/.site.a/y",
        "/login": "/.site.b/login",
        "/.site.a/z": "/.site.a/z",
        "https://example.com/out": "https://example.com/out",
        "relative/path": "relative/path",
    }
    for to, expected in cases.items():
        for status in (301, 302, 303, 307, 308):
            resp, _ = stack["proxy"].request("GET", f"/.site.b/redirect?status={status}&to={to}")
            assert resp.status == status
            assert resp.headers["Location"] == expected, to


def test_set_cookies_scoped_to_the_site_and_domain_dropped(stack):
    resp, _ = stack["proxy"].request("GET", "/cookies", headers={"Cookie": ".site=b"})
    assert set_cookies(resp) == [
        "sid=abc; Path=/.site.b/; HttpOnly",
        ".site~b~sid=abc; Path=/; HttpOnly",
        "pref=a,b; Path=/.site.b/; Expires=Wed, 21 Oct 2037 07:28:00 GMT",
        ".site~b~pref=a,b; Path=/; Expires=Wed, 21 Oct 2037 07:28:00 GMT",
    ]


def test_hop_by_hop_response_headers_dropped(stack):
    resp, data = stack["proxy"].request("GET", "/hop", headers={"Cookie": ".site=b"})
    assert data == b"hop"
    assert resp.headers.get("X-Hop") is None and resp.headers.get("Keep-Alive") is None


def test_no_invented_etag_and_true_content_length(stack):
    resp, data = stack["proxy"].request("GET", "/.site.b/plain")
    assert "Etag" not in resp.headers
    assert int(resp.headers["Content-Length"]) == len(data)


@pytest.mark.parametrize("path, status", [("/nocontent", 204), ("/notmodified", 304)])
def test_no_body_statuses(stack, path, status):
    answer = stack["proxy"].raw(
        f"GET /.site.b{path} HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n".encode()
    )
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status}".encode())
    assert body == b""
    assert b"transfer-encoding" not in head.lower()


def test_text_rewritten_by_rule(stack):
    a = stack["a"]
    resp, data = stack["proxy"].request("GET", "/.site.a/html")
    assert data == '<a href="/.site.a/page">x</a> <img src="/.site.a/i.png"> café'.encode()
    assert int(resp.headers["Content-Length"]) == len(data)
    assert a.url.encode() not in data


def test_binary_passes_byte_exact(stack):
    a = stack["a"]
    _resp, data = stack["proxy"].request("GET", "/.site.a/png")
    assert data == PNG_WITH_URL.replace(b"http://127.0.0.1:1", a.url.encode())


def test_large_binary_streams_intact(stack):
    resp, data = stack["proxy"].request("GET", "/.site.b/big")
    assert resp.status == 200
    assert hashlib.sha256(data).hexdigest() == hashlib.sha256(BIG).hexdigest()


def test_connection_refused_is_502_page(stack):
    resp, data = stack["proxy"].request("GET", "/.site.down/x")
    assert resp.status == 502
    assert b"down" in data and b'href="/.proxy/"' in data
    assert b"Traceback" not in data and b"599" not in data


def test_timeout_is_504_page(stack):
    resp, data = stack["proxy"].request("GET", "/.site.slow/slow")
    assert resp.status == 504
    assert b"slow" in data and b'href="/.proxy/"' in data


def test_many_concurrent_requests_all_complete(stack, tmp_path):
    """Under load the fetch can complete before the IOLoop has run the callbacks that
    carry its headers; every response must still be the backend's, never a 502. (The
    proxy runs in a process of its own, where that ordering showed up.)"""
    import concurrent.futures
    import http.client

    from tests.support import run_proxy_process

    b = stack["b"]
    config = (
        f"from settings import *\nforward_list = {{'b': BackendSite('b', '{b.url}', None, [])}}\n"
    )
    proc, port = run_proxy_process(config, tmp_path)

    def worker(n):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        statuses = []
        for i in range(100):
            conn.request("GET", f"/plain/{n}/{i}", headers={"Cookie": ".site=b"})
            resp = conn.getresponse()
            body = resp.read()
            statuses.append(
                (resp.status, resp.status == 200 and json.loads(body)["uri"] == f"/plain/{n}/{i}")
            )
        conn.close()
        return statuses

    try:
        with concurrent.futures.ThreadPoolExecutor(24) as pool:
            results = [s for chunk in pool.map(worker, range(24)) for s in chunk]
    finally:
        proc.terminate()
        proc.wait(10)
    assert len(results) == 2400
    failed = [r for r in results if r != (200, True)]
    assert failed == [], f"{len(failed)} failed, e.g. {failed[:3]}"


def test_handlers_are_freed_without_the_cycle_collector(stack):
    """A finished request leaves no reference cycle behind: left to the cyclic garbage
    collector, handlers piled up and its passes doubled the p99 latency."""
    import gc

    from handlers.relay.handler import ProxyHandler

    def live_handlers():
        return sum(1 for o in gc.get_objects() if isinstance(o, ProxyHandler))

    gc.collect()
    gc.disable()
    try:
        before = live_handlers()
        for i in range(50):
            resp, _ = stack["proxy"].request("GET", f"/.site.b/gc/{i}")
            assert resp.status == 200
        after = live_handlers()
    finally:
        gc.enable()
    assert after - before <= 2, f"{after - before} handlers still alive"
