"""How an ``Exchange`` becomes libcurl options, and which HTTPRequests RelayClient refuses.

RelayClient implements what the proxy asks of it and refuses the rest, with ValueError at
fetch time, rather than half-implement it: redirects are never followed (a relay passes
them on), bodies are never decompressed (a relay passes them as sent), no header is made
up (no ``User-Agent``), no callback sees raw header lines or the curl handle, and no
proxy, client certificate, authentication, network interface, ``ssl_options``,
``expect_100_continue`` or IPv4-only resolution is offered. ``max_redirects`` is ignored
(nothing is followed); ``if_modified_since`` works, as Tornado turns it into a header.
"""

from __future__ import annotations

from typing import Any

import pycurl
from tornado.httpclient import HTTPRequest
from tornado.httputil import HTTPHeaders

from handlers.upstream.exchange import Exchange

# libcurl's receive buffer: larger chunks mean fewer Python calls per MiB relayed.
CURL_BUFFER_SIZE = 256 * 1024
# HTTPRequest fields RelayClient does not implement: a request that sets one is refused.
REFUSED = (
    "follow_redirects",
    "decompress_response",
    "user_agent",
    "header_callback",
    "prepare_curl_callback",
    "expect_100_continue",
    "proxy_host",
    "auth_username",
    "client_cert",
    "client_key",
    "ssl_options",
    "network_interface",
)
# What RelayClient assumes when a request does not say (Tornado's defaults are the opposite).
DEFAULTS = {"follow_redirects": False, "decompress_response": False}
# Methods that carry a body, so say so even when it is empty.
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def refusal(request: HTTPRequest, has_body: bool) -> ValueError | None:
    """Why RelayClient will not send ``request``, or None."""
    for name in REFUSED:
        if getattr(request, name):
            return ValueError(f"RelayClient does not support {name}")
    if request.allow_ipv6 is False:
        return ValueError("RelayClient does not support allow_ipv6=False")
    if has_body and request.method in ("GET", "HEAD"):
        return ValueError(f"a {request.method} request cannot carry a body here")
    return None


def configure(
    curl: pycurl.Curl, spec: Exchange, ca_file: str | None, body_size: int | None
) -> None:
    """Set ``curl`` (reset before) up for ``spec``. ``body_size``: None when the
    request has no body, -1 when it is streamed, else its length."""
    setopt = curl.setopt
    setopt(pycurl.URL, spec.url)
    setopt(pycurl.NOSIGNAL, 1)
    setopt(pycurl.PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)
    setopt(pycurl.BUFFERSIZE, CURL_BUFFER_SIZE)
    target = spec.request_target
    if target is not None:
        # As given: no squashing of "/../", no upper-casing of "%2e".
        setopt(pycurl.PATH_AS_IS, 1)
        setopt(pycurl.REQUEST_TARGET, target)
    setopt(pycurl.HTTPHEADER, header_lines(spec.headers, body_size is not None))
    if spec.connect_timeout:
        setopt(pycurl.CONNECTTIMEOUT_MS, int(1000 * spec.connect_timeout))
    if spec.request_timeout:
        setopt(pycurl.TIMEOUT_MS, int(1000 * spec.request_timeout))
    idle = spec.idle_timeout
    if idle:
        # Under 1 byte/s for that long (time spent paused is not counted).
        setopt(pycurl.LOW_SPEED_LIMIT, 1)
        setopt(pycurl.LOW_SPEED_TIME, max(1, round(idle)))
    if spec.url.startswith("https:"):
        if not spec.validate_cert:
            setopt(pycurl.SSL_VERIFYPEER, 0)
            setopt(pycurl.SSL_VERIFYHOST, 0)
        cafile = spec.ca_certs or ca_file
        if cafile:
            setopt(pycurl.CAINFO, cafile)
    length = spec.headers.get("Content-Length") if body_size is not None else None
    _set_method(curl, spec.method, body_size, length)


def header_lines(headers: dict[str, str] | HTTPHeaders, framed: bool) -> list[bytes]:
    """The header lines libcurl sends, exactly ``headers``: nothing of its own. With
    ``framed`` (a body), Content-Length is left to libcurl, which frames the body."""
    # (type(), not isinstance(): HTTPHeaders is an ABC, whose check costs microseconds.)
    pairs = headers.items() if type(headers) is dict else headers.get_all()  # type: ignore[union-attr]
    lines = [
        f"{name}: {value}" if value else f"{name};"
        for name, value in pairs
        if not (framed and name == "Content-Length")
    ]
    # Fields libcurl (or pycurl) would make up when absent: an empty value says no.
    # (libcurl labels any POST body application/x-www-form-urlencoded.)
    for name in ("Accept", "User-Agent", "Content-Type"):
        if name not in headers:
            lines.append(f"{name}:")
    lines.append("Expect:")
    # One string, checked and encoded at once: CR separates the lines, so any other
    # CR (or any LF) was in a field.
    joined = "\r".join(lines)
    if "\n" in joined or joined.count("\r") != len(lines) - 1:
        raise ValueError("a request header contains CR or LF")
    return joined.encode("latin-1").split(b"\r")


def _set_method(curl: pycurl.Curl, method: str, body_size: int | None, length: Any) -> None:
    if method == "HEAD":
        curl.setopt(pycurl.NOBODY, 1)
    elif method != "GET" and method != "POST" and method != "PUT":
        curl.setopt(pycurl.CUSTOMREQUEST, method)
    if body_size is None:
        return
    # A body: libcurl pulls it through the transfer's read(); its length, when known,
    # frames it, else it goes chunked.
    if body_size < 0:
        body_size = int(length) if length is not None and str(length).isdigit() else -1
    if method == "POST":
        curl.setopt(pycurl.POST, 1)
        curl.setopt(pycurl.POSTFIELDSIZE_LARGE, body_size)
    else:
        curl.setopt(pycurl.UPLOAD, 1)
        curl.setopt(pycurl.INFILESIZE_LARGE, body_size)


def ascii_target(target: str) -> str:
    """The request target as libcurl will accept it. Tornado hands us the request line
    decoded as latin-1, so each character is one byte as sent; bytes outside ASCII are
    percent-encoded (as browsers do), everything else passes untouched."""
    if target.isascii():
        return target
    return "".join(c if ord(c) < 128 else f"%{ord(c):02X}" for c in target)
