"""How an HTTPRequest becomes libcurl options, for RelayClient (handlers/upstream/client.py)."""

from __future__ import annotations

from typing import Any

import pycurl

from handlers.upstream.transfer import Transfer

# libcurl's receive buffer: larger chunks mean fewer Python calls per MiB relayed.
CURL_BUFFER_SIZE = 256 * 1024
# HTTPRequest fields RelayClient does not implement: a request naming one fails.
UNSUPPORTED = (
    "proxy_host",
    "auth_username",
    "client_cert",
    "client_key",
    "ssl_options",
    "network_interface",
)
# Methods that carry a body, so say so even when it is empty.
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def configure(curl: pycurl.Curl, transfer: Transfer, ca_file: str | None) -> None:
    """Set ``curl`` up for ``transfer``'s request (the handle was reset before)."""
    request = transfer.request
    if transfer.body is not None and request.method in ("GET", "HEAD"):
        raise ValueError(f"a {request.method} request cannot carry a body here")
    for name in UNSUPPORTED:
        if getattr(request, name, None):
            raise ValueError(f"RelayClient does not support {name}")
    setopt = curl.setopt
    setopt(pycurl.URL, request.url)
    setopt(pycurl.NOSIGNAL, 1)
    setopt(pycurl.PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)
    setopt(pycurl.BUFFERSIZE, CURL_BUFFER_SIZE)
    setopt(pycurl.HEADERFUNCTION, transfer.header_line)
    setopt(pycurl.WRITEFUNCTION, transfer.write)
    target = getattr(request, "request_target", None)
    if target is not None:
        # As given: no squashing of "/../", no upper-casing of "%2e".
        setopt(pycurl.PATH_AS_IS, 1)
        setopt(pycurl.REQUEST_TARGET, target)
    headers = request.headers
    length = headers.pop("Content-Length", None) if transfer.body is not None else None
    lines = [f"{name}: {value}" if value else f"{name};" for name, value in headers.get_all()]
    # Fields libcurl (or pycurl) would make up when absent: an empty value says no.
    # (libcurl labels any POST body application/x-www-form-urlencoded.)
    for name in ("Accept", "User-Agent", "Content-Type"):
        if name not in headers and not (name == "User-Agent" and request.user_agent):
            lines.append(f"{name}:")
    lines.append("Expect:")
    if any("\r" in line or "\n" in line for line in lines):
        raise ValueError("a request header contains CR or LF")
    setopt(pycurl.HTTPHEADER, [line.encode("latin-1") for line in lines])
    if request.follow_redirects:
        setopt(pycurl.FOLLOWLOCATION, 1)
        setopt(pycurl.MAXREDIRS, request.max_redirects or 5)
        setopt(pycurl.REDIR_PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)
    if request.connect_timeout:
        setopt(pycurl.CONNECTTIMEOUT_MS, int(1000 * request.connect_timeout))
    if request.request_timeout:
        setopt(pycurl.TIMEOUT_MS, int(1000 * request.request_timeout))
    idle = getattr(request, "idle_timeout", None)
    if idle:
        # Under 1 byte/s for that long (time spent paused is not counted).
        setopt(pycurl.LOW_SPEED_LIMIT, 1)
        setopt(pycurl.LOW_SPEED_TIME, max(1, round(idle)))
    if request.decompress_response:
        setopt(pycurl.ACCEPT_ENCODING, "gzip,deflate")
    if request.user_agent:
        setopt(pycurl.USERAGENT, request.user_agent)
    if request.url.startswith("https:"):
        if request.validate_cert is False:
            setopt(pycurl.SSL_VERIFYPEER, 0)
            setopt(pycurl.SSL_VERIFYHOST, 0)
        cafile = request.ca_certs or ca_file
        if cafile:
            setopt(pycurl.CAINFO, cafile)
    _set_method(curl, request.method, transfer, length)
    if request.prepare_curl_callback is not None:
        request.prepare_curl_callback(curl)


def _set_method(curl: pycurl.Curl, method: str, transfer: Transfer, length: Any) -> None:
    if method == "HEAD":
        curl.setopt(pycurl.NOBODY, 1)
    elif method != "GET" and method != "POST" and method != "PUT":
        curl.setopt(pycurl.CUSTOMREQUEST, method)
    if transfer.body is None:
        return
    # A body: libcurl pulls it through read(); its length, when known, frames it,
    # else it goes chunked.
    if transfer.body_ended:
        size = transfer.body_bytes
    else:
        size = int(length) if length is not None and str(length).isdigit() else -1
    curl.setopt(pycurl.READFUNCTION, transfer.read)
    curl.setopt(pycurl.SEEKFUNCTION, lambda offset, origin: pycurl.SEEKFUNC_CANTSEEK)
    if method == "POST":
        curl.setopt(pycurl.POST, 1)
        curl.setopt(pycurl.POSTFIELDSIZE_LARGE, size)
    else:
        curl.setopt(pycurl.UPLOAD, 1)
        curl.setopt(pycurl.INFILESIZE_LARGE, size)


def ascii_target(target: str) -> str:
    """The request target as libcurl will accept it. Tornado hands us the request line
    decoded as latin-1, so each character is one byte as sent; bytes outside ASCII are
    percent-encoded (as browsers do), everything else passes untouched."""
    if target.isascii():
        return target
    return "".join(c if ord(c) < 128 else f"%{ord(c):02X}" for c in target)
