"""The two backends behind the proxy in this folder's tests (a and b, each serving
the same routes under its own URL), and what the tests ask of them and of answers."""

import asyncio
import os

PNG_WITH_URL = b"\x89PNG\r\n\x1a\n" + b"\x00\xff" * 50 + b"http://127.0.0.1:1/img" + b"\x00" * 10

BIG = os.urandom(5 * 1024 * 1024 + 17)

# Headers of a browser's top-level navigation.
NAVIGATE = {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}


def routes(own_url):
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
        # rewritable one it has none, as tests/integration/test_head.py shows).
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


def last(backend):
    assert backend.seen, f"backend {backend.name} received nothing"
    return backend.seen[-1]


def set_cookies(resp):
    return resp.headers.get_all("Set-Cookie") or []
