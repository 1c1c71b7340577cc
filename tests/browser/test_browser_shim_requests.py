"""Request objects, request bodies and every RequestInit member through the shim, each
compared with the same page loaded straight from the backend.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any as AnyType
from urllib.parse import urlsplit

import pytest

from tests.browser.shim_sites import GIF, Got, Site


@contextmanager
def _page_of_a(shimmed, proxied: bool) -> Iterator[AnyType]:
    """A page of site a in a fresh browser context: through the proxy (the cookie
    fallback naming b, as in conftest.py) or straight from a's backend."""
    context = shimmed["browser"].new_context()
    base = shimmed["sites"]["a"].url
    if proxied:
        context.add_cookies([{"name": ".site", "value": "b", "url": shimmed["origin"]}])
        base = shimmed["origin"] + "/.site.a"
    try:
        page = context.new_page()
        page.set_default_timeout(10_000)
        page.goto(base + "/app/page.html")
        yield page
    finally:
        context.close()


def _arrived(site: Site, paths: list[str], timeout: float = 5) -> dict[str, Got]:
    """What the backend received at each path (sendBeacon returns before it sends)."""
    deadline = time.monotonic() + timeout
    while any(p not in site.got for p in paths) and time.monotonic() < deadline:
        time.sleep(0.05)
    return {p: site.got[p] for p in paths if p in site.got}


# Each body kind by each way a page sends a body: fetch with a Request, with a URL and
# init, with a Request and an init that brings the body, with a Request made in another
# realm (an about:blank frame: no shim saw it, and the Referer takes it to its site),
# XMLHttpRequest and sendBeacon. A stream needs duplex "half", and only fetch takes one.
BODIES = """async kind => {
  const bytes = new Uint8Array(256).map((_, i) => i);
  const make = {
    string: () => "h\\u00e9llo \\u2713",
    formdata: () => {
      const f = new FormData();
      f.append("text", "h\\u00e9llo");
      f.append("file", new Blob([bytes], {type: "application/octet-stream"}), "f.bin");
      return f;
    },
    urlsearchparams: () => new URLSearchParams({a: "1", b: "\\u00e9 x"}),
    blob: () => new Blob([bytes], {type: "image/png"}),
    arraybuffer: () => bytes.buffer.slice(0),
    stream: () => new ReadableStream({start(c) { c.enqueue(bytes); c.close(); }}),
  }[kind];
  const duplex = kind === "stream" ? {duplex: "half"} : {};
  const init = () => ({method: "POST", body: make(), headers: {"X-Kind": kind}, ...duplex});
  const frame = document.body.appendChild(document.createElement("iframe"));
  const forms = {
    request: u => fetch(new Request(u, init())),
    url: u => fetch(u, init()),
    "request+init": u => fetch(new Request(u, {headers: {"X-Kind": kind}}),
                               {method: "POST", body: make(), ...duplex}),
    "other-realm": u => fetch(new frame.contentWindow.Request(u, init())),
    xhr: u => new Promise((ok, no) => {
      const x = new XMLHttpRequest();
      x.open("POST", u);
      x.setRequestHeader("X-Kind", kind);
      x.onload = () => ok({status: x.status});
      x.onerror = () => no(new TypeError("XHR failed"));
      x.send(make());
    }),
    beacon: u => ({queued: navigator.sendBeacon(u, make())}),
  };
  if (kind === "stream") { delete forms.xhr; delete forms.beacon; }
  const out = {};
  for (const [form, send] of Object.entries(forms)) {
    out[form] = await Promise.resolve().then(() => send("/body/" + kind + "/" + form)).then(
      r => r instanceof Response ? {status: r.status} : r, e => ({error: e.name}));
  }
  return out;
}"""
BYTES = bytes(range(256))

# What a direct fetch sends for each kind: Content-Type and body (the multipart
# boundary, random per request, written as BOUNDARY).
SENT = {
    "string": ("text/plain;charset=UTF-8", "héllo ✓".encode()),
    "formdata": (
        "multipart/form-data; boundary=BOUNDARY",
        b'--BOUNDARY\r\nContent-Disposition: form-data; name="text"\r\n\r\nh\xc3\xa9llo\r\n'
        b'--BOUNDARY\r\nContent-Disposition: form-data; name="file"; filename="f.bin"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n" + BYTES + b"\r\n--BOUNDARY--\r\n",
    ),
    "urlsearchparams": ("application/x-www-form-urlencoded;charset=UTF-8", b"a=1&b=%C3%A9+x"),
    "blob": ("image/png", BYTES),
    "arraybuffer": (None, BYTES),
}


def _as_sent(got: Got) -> tuple[str, str | None, bytes, str | None]:
    content_type, body = got.headers.get("content-type"), got.body
    if content_type and "boundary=" in content_type:
        boundary = content_type.split("boundary=", 1)[1]
        content_type = content_type.replace(boundary, "BOUNDARY")
        body = body.replace(boundary.encode(), b"BOUNDARY")
    return got.method, content_type, body, got.headers.get("x-kind")


def _send_bodies(shimmed, kind: str, proxied: bool) -> tuple[dict, dict]:
    a, b = shimmed["sites"]["a"], shimmed["sites"]["b"]
    a.got.clear()
    b.seen.clear()
    with _page_of_a(shimmed, proxied) as page:
        outcomes = page.evaluate(BODIES, kind)
    paths = [f"/body/{kind}/{form}" for form in outcomes if "error" not in outcomes[form]]
    got = _arrived(a, paths)
    assert [p for p, _ in b.seen] == []  # nothing went to the cookie's site
    return outcomes, {p.rsplit("/", 1)[1]: _as_sent(g) for p, g in got.items()}


@pytest.mark.parametrize("kind", [*SENT, "stream"])
def test_request_bodies_reach_the_backend_as_directly(shimmed, kind):
    """Django's AJAX pattern, fetch(new Request(url, {method: "POST", body, ...})),
    failed through the shim ("Failed to fetch") for every kind of body."""
    direct = _send_bodies(shimmed, kind, proxied=False)
    through = _send_bodies(shimmed, kind, proxied=True)
    if kind == "stream":
        # Whatever Chromium does with it directly (over HTTP/1.1: refuses it) is the rule.
        assert through == direct
        return
    outcomes, got = direct
    assert outcomes == {
        **{f: {"status": 200} for f in ("request", "url", "request+init", "other-realm", "xhr")},
        "beacon": {"queued": True},
    }
    content_type, body = SENT[kind]
    assert got == {
        form: ("POST", content_type, body, None if form == "beacon" else kind) for form in outcomes
    }
    assert through == direct


MEMBERS = """async ([form, integrity]) => {
  const call = {
    request: (u, init) => fetch(new Request(u, init)),
    url: (u, init) => fetch(u, init),
    "request+init": (u, init) => fetch(new Request(u, {headers: {"X-Form": "1"}}), init),
  }[form];
  const at = name => "/m/" + form + "/" + name;
  const settle = (name, init) => Promise.resolve().then(() => call(at(name), init)).then(
    r => ({type: r.type, status: r.status, redirected: r.redirected}), e => ({error: e.name}));
  document.cookie = "k=v; path=/";
  const aborted = new AbortController();
  aborted.abort();
  const later = new AbortController();
  const out = {
    manual: await settle("redirect", {redirect: "manual"}),
    error: await settle("redirect", {redirect: "error"}),
    follow: await settle("redirect", {}),
    aborted: await settle("aborted", {signal: aborted.signal}),
    omit: await settle("omit", {credentials: "omit"}),
    "same-origin": await settle("same-origin", {mode: "same-origin", credentials: "same-origin"}),
    "no-cors-put": await settle("no-cors-put", {mode: "no-cors", method: "PUT"}),
    keepalive: await settle("keepalive", {method: "POST", body: "ka", keepalive: true}),
    "keepalive-too-big": await settle("keepalive-too-big",
                                      {method: "POST", body: "x".repeat(70000), keepalive: true}),
    "img.gif": await settle("img.gif", {integrity}),
    "bad.gif": await settle("bad.gif", {integrity: "sha256-AAAA"}),
    "no-referrer": await settle("no-referrer", {referrerPolicy: "no-referrer"}),
    reload: await settle("reload", {cache: "reload"}),
    low: await settle("low", {priority: "low"}),
    delete: await settle("delete", {method: "DELETE", headers: {"X-Token": "t"}}),
  };
  const inFlight = settle("slow", {signal: later.signal});
  setTimeout(() => later.abort(), 300);
  out.slow = await inFlight;
  // The Request itself, as the page reads it back.
  const r = new Request(at("props"), {method: "PUT", body: "p", mode: "same-origin",
    credentials: "omit", cache: "no-store", redirect: "manual", referrerPolicy: "origin",
    integrity, keepalive: true, headers: {"X-Token": "t"}});
  class Sub extends Request {}
  out.props = {
    path: new URL(r.url).pathname, method: r.method, mode: r.mode,
    credentials: r.credentials, cache: r.cache, redirect: r.redirect,
    referrerPolicy: r.referrerPolicy, integrity: r.integrity, keepalive: r.keepalive,
    token: r.headers.get("X-Token"), body: await r.clone().text(),
    isRequest: r instanceof Request && r.constructor === Request,
    sub: new URL(new Sub(at("sub")).url).pathname, isSub: new Sub("/x") instanceof Sub,
  };
  return out;
}"""
OK = {"type": "basic", "status": 200, "redirected": False}
INTEGRITY = "sha256-" + base64.b64encode(hashlib.sha256(GIF).digest()).decode()


def _members(shimmed, form: str, proxied: bool) -> tuple[dict, dict, dict]:
    a = shimmed["sites"]["a"]
    a.got.clear()
    with _page_of_a(shimmed, proxied) as page:
        priorities: dict[str, str] = {}
        cdp = page.context.new_cdp_session(page)
        cdp.on(
            "Network.requestWillBeSent",
            lambda e: priorities.__setitem__(
                urlsplit(e["request"]["url"]).path.removeprefix("/.site.a"),
                e["request"]["initialPriority"],
            ),
        )
        cdp.send("Network.enable")
        outcomes = page.evaluate(MEMBERS, [form, INTEGRITY])
    at = f"/m/{form}/"
    seen = {
        path.removeprefix(at): (g.method, {k: g.headers.get(k) for k in FACTS}, g.body)
        for path, g in list(a.got.items())
        if path.startswith(at)
    }
    return outcomes, seen, {p.removeprefix(at): v for p, v in priorities.items()}


# What each request told the backend, beside its method and body.
FACTS = ("cookie", "referer", "cache-control", "x-token", "x-form")


@pytest.mark.parametrize("form", ["request", "url", "request+init"])
def test_every_request_init_member_works_as_directly(shimmed, form):
    (out, seen, priorities) = _members(shimmed, form, proxied=False)
    (p_out, p_seen, p_priorities) = _members(shimmed, form, proxied=True)
    props, p_props = out.pop("props"), p_out.pop("props")
    assert (p_out, p_seen) == (out, seen)
    assert p_priorities["low"] == priorities["low"] == "Low"
    assert p_priorities["omit"] == priorities["omit"] == "High"
    # The Request a page makes names its site's prefix, and is otherwise the same.
    assert p_props == {
        **props,
        "path": "/.site.a" + props["path"],
        "sub": "/.site.a" + props["sub"],
    }
    assert props == {
        "path": f"/m/{form}/props", "method": "PUT", "mode": "same-origin",
        "credentials": "omit", "cache": "no-store", "redirect": "manual",
        "referrerPolicy": "origin", "integrity": INTEGRITY, "keepalive": True,
        "token": "t", "body": "p", "isRequest": True, "sub": f"/m/{form}/sub", "isSub": True,
    }  # fmt: skip
    assert out == {
        "manual": {"type": "opaqueredirect", "status": 0, "redirected": False},
        "error": {"error": "TypeError"},
        "follow": {"type": "basic", "status": 200, "redirected": True},
        "aborted": {"error": "AbortError"},
        "slow": {"error": "AbortError"},
        "no-cors-put": {"error": "TypeError"},
        "keepalive-too-big": {"error": "TypeError"},
        "bad.gif": {"error": "TypeError"},
        **{k: OK for k in ("omit", "same-origin", "keepalive", "img.gif", "no-referrer")},
        **{k: OK for k in ("reload", "low", "delete")},
    }
    x_form = "1" if form == "request+init" else None
    assert seen["omit"][1]["cookie"] is None
    assert seen["same-origin"][1]["cookie"] == "k=v"
    assert seen["no-referrer"][1]["referer"] is None
    assert seen["same-origin"][1]["referer"] == shimmed["sites"]["a"].url + "/app/page.html"
    assert seen["reload"][1]["cache-control"] == "no-cache"
    assert seen["keepalive"][0::2] == ("POST", b"ka")
    assert seen["delete"][0] == "DELETE" and seen["delete"][1]["x-token"] == "t"
    # A Request's headers go with it, but where the fetch's init has its own.
    assert {k for k, (_, facts, _) in seen.items() if facts["x-form"] != x_form} == (
        {"delete"} if x_form else set()
    )
