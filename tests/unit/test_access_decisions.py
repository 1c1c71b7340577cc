"""Who may reach what, decided without a socket: the client's address behind trusted
proxies, networks and path rules, the login throttle, where a login may lead next."""

from __future__ import annotations

import pytest

from handlers.door.access import Throttle, client_ip, in_networks, networks, path_allowed
from handlers.door.login import safe_next


def test_client_ip_believes_only_trusted_peers():
    trusted = lambda a: a in ("127.0.0.1", "10.0.0.2")  # noqa: E731
    forged = {"X-Forwarded-For": "10.9.9.9", "X-Real-Ip": "10.9.9.9"}
    assert client_ip("203.0.113.7", forged, trusted) == "203.0.113.7"
    assert client_ip("127.0.0.1", {"X-Real-Ip": "198.51.100.4"}, trusted) == "198.51.100.4"
    # The last address a trusted proxy did not add: what the client wrote before it
    # (10.9.9.9, forged) is not believed.
    chain = {"X-Forwarded-For": "10.9.9.9, 198.51.100.4, 10.0.0.2"}
    assert client_ip("127.0.0.1", chain, trusted) == "198.51.100.4"
    assert client_ip("127.0.0.1", {}, trusted) == "127.0.0.1"


def test_networks_and_paths():
    nets = networks(["10.0.0.0/8", "2001:db8::/32"])
    assert in_networks("10.1.2.3", nets) and in_networks("2001:db8::1", nets)
    assert not in_networks("11.0.0.1", nets) and not in_networks("junk", nets)
    assert in_networks("11.0.0.1", ())
    import re

    allow, deny = (re.compile("^/pub/"),), (re.compile(r"secret|\?debug"),)
    assert path_allowed("/pub/a", allow, deny)
    assert not path_allowed("/pub/secret", allow, deny)
    assert not path_allowed("/pub/a?debug=1", allow, deny)
    assert not path_allowed("/private", allow, deny)
    assert path_allowed("/private", (), deny)


def test_throttle_per_key_with_its_window():
    throttle = Throttle(limit=3, window=60)
    for t in (0, 1, 2):
        assert throttle.wait("client x", "user a", now=t) == 0
        throttle.failed("client x", "user a", now=t)
    assert throttle.wait("user a", now=3) == pytest.approx(57)
    assert throttle.wait("client y", "user b", now=3) == 0
    assert throttle.wait("client x", now=61) == 0  # the oldest failure aged out


def test_safe_next_stays_on_the_proxy():
    assert safe_next("/.site.a/x?y") == "/.site.a/x?y"
    for bad in ("//evil.example/", "/\\evil.example", "http://evil.example/", "", None):
        assert safe_next(bad) == "/.proxy/"
