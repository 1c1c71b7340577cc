"""What the proxy needs of a client connection beyond Tornado's connection interface.

``HTTPServerRequest.connection`` (and the ``request_conn`` a connection delegate is
given) is typed ``tornado.httputil.HTTPConnection``, which declares ``write_headers``,
``write`` and ``finish`` only. Three things the proxy does are offered by
``tornado.http1connection.HTTP1Connection`` alone, the one connection class Tornado's
``HTTPServer`` makes. They live here, in one place, so that a change in Tornado's
server shows up in this file and nowhere else:

- ``close``: end the client's connection at once (a response that cannot be completed
  honestly, or the last one on a connection);
- ``set_max_body_size``: the body limit of one request, set when its headers are in;
- ``peer_address``: the client's address before any ``HTTPServerRequest`` exists (a
  request the front door refuses at its headers); it lives in the connection's
  ``context``, which ``HTTPServer`` fills (``remote_ip``).

A connection of another class (none today) is left alone: not closed, no limit set,
no address.
"""

from __future__ import annotations

from tornado.http1connection import HTTP1Connection
from tornado.httputil import HTTPConnection


def close(connection: HTTPConnection | None) -> None:
    """End ``connection`` now, whatever is still queued on it."""
    if isinstance(connection, HTTP1Connection):
        connection.close()


def set_max_body_size(connection: HTTPConnection | None, size: int) -> None:
    """Let this request's body be up to ``size`` bytes (Tornado's server-wide limit
    otherwise); past it, Tornado stops reading and closes the connection."""
    if isinstance(connection, HTTP1Connection):
        connection.set_max_body_size(size)


def peer_address(connection: HTTPConnection | None) -> str:
    """The client's IP address as the server saw it, or "" when unknown."""
    if not isinstance(connection, HTTP1Connection):
        return ""
    return str(getattr(connection.context, "remote_ip", "") or "")
