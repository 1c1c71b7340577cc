"""Who may reach what, decided without a socket: the client's address behind trusted
proxies, networks and path rules, where a login may lead next. (The login throttle is
tests/unit/test_throttle.py's.)"""

from __future__ import annotations

from handlers.door.access import client_ip, in_networks, networks, path_allowed
from handlers.door.signin import safe_next


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

    allow, deny = ((None, re.compile("^/pub/")),), ((None, re.compile(r"secret|\?debug")),)
    assert path_allowed("/pub/a", allow, deny)
    assert not path_allowed("/pub/secret", allow, deny)
    assert not path_allowed("/pub/a?debug=1", allow, deny)
    assert not path_allowed("/private", allow, deny)
    assert path_allowed("/private", (), deny)


def test_path_rules_per_group():
    import re

    allow = (("staff", re.compile(".*")), (None, re.compile("^/public/")))
    deny = (("interns", re.compile("^/admin")),)
    assert path_allowed("/public/a", allow, deny)
    assert not path_allowed("/private", allow, deny)
    assert path_allowed("/private", allow, deny, frozenset({"staff"}))
    assert path_allowed("/admin", allow, deny, frozenset({"staff"}))
    # A deny rule of one of the user's groups wins over another group's allow.
    assert not path_allowed("/admin", allow, deny, frozenset({"staff", "interns"}))
    # An allow list that applies to none of the user's groups lets nothing through.
    only_staff = (("staff", re.compile(".*")),)
    assert not path_allowed("/anything", only_staff, (), frozenset({"guests"}))


def test_safe_next_stays_on_the_proxy():
    assert safe_next("/.site.a/x?y") == "/.site.a/x?y"
    for bad in ("//evil.example/", "/\\evil.example", "http://evil.example/", "", None):
        assert safe_next(bad) == "/.proxy/"
