"""Signing in against a real slapd (tests/support/slapd.py) through the proxy's login form,
when it must not work: wrong, unknown and empty passwords get no session (an empty one
not even a bind), the throttle holds back a name in any case and an address, the
directory's certificate and its name are checked before a password goes out, a
directory that is down is answered with 503 in seconds, and names that try to be a DN
or a filter never sign anyone in but their own accounts. What goes well is in
test_ldap_signin.py, with which this module shares slapd, the backends and the proxies
(conftest.py).

slapd's own log is the witness of what the proxy sent it: the DNs of its binds, read up
to a sentinel bind, so that "no bind was made" is a fact and not a guess.
"""

from __future__ import annotations

import logging
import re
import socket
import time
from pathlib import Path

import ldap3
import pytest
from ldap3.utils.dn import parse_dn

from tests.support import Proxy, free_port
from tests.support.identity import (
    PASSWORDS,
    Outcome,
    identity_seen,
    new_client,
    opens,
    require_memberof,
    sign_in,
    signed_in,
)
from tests.support.slapd import Directory as Slapd

QUICK_TIMEOUT = 1  # for a directory that is down: the 503 must come within seconds
NO_TRACE = re.compile(rb"Traceback|File \"|ldap3|LDAP[A-Z]\w*Error|_ssl\.c")


def assert_down_page(outcome: Outcome, within: float) -> None:
    """The login page saying the directory cannot be reached: 503 with Retry-After, in
    time, no session and nothing of the failure's insides."""
    assert outcome.status == 503, (outcome.status, outcome.body[:500])
    assert b"The directory cannot be reached" in outcome.body
    assert outcome.retry_after is not None and int(outcome.retry_after) > 0
    assert outcome.cookie == ""
    assert outcome.seconds < within, f"{outcome.seconds:.1f} s"
    assert not NO_TRACE.search(outcome.body), outcome.body


# -- what slapd saw ----------------------------------------------------------------------


def log_size(slapd: Slapd) -> int:
    return slapd.log_file.stat().st_size


def binds_until(proxy: Proxy, slapd: Slapd, since: int) -> list[str]:
    """The DNs slapd was asked to bind as since the log held ``since`` bytes, up to a
    sentinel bind made now: requests are sequential, so once the sentinel's BIND is in
    the log, every earlier one is too (a readiness check, not a sleep)."""
    sentinel = f"sentinel-{time.monotonic_ns()}"
    assert sign_in(proxy, sentinel, "no password of anyone's").status == 401
    deadline = time.monotonic() + 10
    while True:
        with open(slapd.log_file, "rb") as log:
            log.seek(since)
            text = log.read().decode("utf-8", "replace")
        dns = re.findall(r' BIND dn="([^"]*)"', text)
        if any(sentinel in dn for dn in dns):
            return [dn for dn in dns if sentinel not in dn]
        assert time.monotonic() < deadline, f"slapd never logged the sentinel's bind:\n{text}"
        time.sleep(0.02)


# -- 1. wrong, unknown and empty passwords; the throttle ---------------------------------


def test_wrong_unknown_and_empty_passwords_get_no_session(proxy, slapd) -> None:
    """401 with the form's message and no session for a wrong password or an unknown
    name. An empty password is refused before any bind: LDAP takes a DN with an empty
    password for an anonymous bind and says yes (RFC 4513, 5.1.2), so the proxy must
    never send one; slapd's log shows it did not, and no session came of it."""
    for name, password in [
        ("alice", PASSWORDS["alice"] + "x"),
        ("alice", PASSWORDS["bob"]),
        ("nobody", PASSWORDS["alice"]),
    ]:
        outcome = sign_in(proxy, name, password)
        assert outcome.status == 401, (name, outcome.status)
        assert b"Wrong name or password." in outcome.body and outcome.cookie == ""
    since = log_size(slapd)
    for name, password in [("alice", ""), ("", ""), ("", PASSWORDS["alice"])]:
        outcome = sign_in(proxy, name, password)
        assert outcome.status == 401, (name, password, outcome.status)
        assert b"Wrong name or password." in outcome.body and outcome.cookie == ""
    assert binds_until(proxy, slapd, since) == [], "a bind was made for an empty field"


def test_the_throttle_per_name_and_per_client(new_proxy) -> None:
    """Five failures for a name, from five addresses, hold that name back: the right
    password is answered 429 with Retry-After, from a sixth address too. Five failures
    from one address hold it back for any name. Others are not held back."""
    throttled = new_proxy()  # its own throttle, fresh
    for _ in range(5):
        assert sign_in(throttled, "bob", "a guess").status == 401
    fresh = new_client()
    outcome = sign_in(throttled, "bob", PASSWORDS["bob"], client=fresh)
    assert outcome.status == 429 and outcome.cookie == ""
    assert int(outcome.retry_after) > 0
    assert b"Too many failed tries" in outcome.body
    # It is bob's name that is held back, not that address.
    assert sign_in(throttled, "alice", PASSWORDS["alice"], client=fresh).status == 302
    # One address, five names: that address is held back, whoever it names.
    guesser = new_client()
    for i in range(5):
        assert sign_in(throttled, f"guess-{i}", "a guess", client=guesser).status == 401
    outcome = sign_in(throttled, "alice", PASSWORDS["alice"], client=guesser)
    assert outcome.status == 429 and outcome.cookie == ""
    assert sign_in(throttled, "alice", PASSWORDS["alice"]).status == 302


def test_the_throttle_holds_a_name_in_any_case(new_proxy) -> None:
    """uid matches ignoring case, so "BOB" signs in as bob: the throttle must count it
    as bob, or every spelling of a name buys five more guesses (2**len(name) of them
    from case alone)."""
    throttled = new_proxy()
    for _ in range(5):
        assert sign_in(throttled, "bob", "a guess").status == 401
    for variant in ("BOB", "Bob", "bOb"):
        assert sign_in(throttled, variant, PASSWORDS["bob"]).status == 429, variant


def test_a_password_is_checked_as_typed(proxy, slapd) -> None:
    """The directory decides what a password is: one that begins or ends with spaces
    signs in as typed, and the same without its spaces is another, wrong, password."""
    slapd.add_user("gina", PASSWORDS["gina"], groups=["staff"])
    try:
        assert sign_in(proxy, "gina", PASSWORDS["gina"]).status == 302
        assert sign_in(proxy, "gina", PASSWORDS["gina"].strip()).status == 401
    finally:
        slapd.remove_user("gina")


# -- 2. certificate checks, and a directory that is down ---------------------------------


@pytest.mark.parametrize("scheme", [pytest.param("starttls"), pytest.param("ldaps")])
def test_without_the_directorys_ca_nobody_signs_in(scheme, new_proxy, proxy, slapd, caplog) -> None:
    """With only the system CAs the test CA's certificate is refused, so the password is
    never sent: the login page says the directory cannot be reached (503), at once,
    neither a 500 nor a hang; the log says why."""
    url = slapd.url if scheme == "starttls" else slapd.ldaps_url
    untrusting = new_proxy(ldap_url=url, ldap_ca_file=None)
    since = log_size(slapd)
    with caplog.at_level(logging.ERROR):
        outcome = sign_in(untrusting, "alice", PASSWORDS["alice"])
    assert_down_page(outcome, within=3)
    assert any("certificate verify failed" in r.getMessage() for r in caplog.records)
    # Nor did the password go out: slapd saw no bind from it.
    assert binds_until(proxy, slapd, since) == []


@pytest.mark.parametrize("scheme", [pytest.param("starttls"), pytest.param("ldaps")])
def test_the_directorys_name_is_checked(scheme, new_proxy, slapd, caplog) -> None:
    """The right CA is not enough: the certificate must name the host of ldap_url. The
    same slapd reached as ::ffff:127.0.0.1 (its certificate names 127.0.0.1 and
    localhost) is refused with 503."""
    port = slapd.port if scheme == "starttls" else slapd.ldaps_port
    try:
        socket.create_connection(("::ffff:127.0.0.1", port), timeout=2).close()
    except OSError as exc:  # no IPv6 here: the 503 would not prove the name check
        pytest.skip(f"::ffff:127.0.0.1 is not reachable: {exc}")
    prefix = "ldap" if scheme == "starttls" else "ldaps"
    misnamed = new_proxy(ldap_url=f"{prefix}://[::ffff:127.0.0.1]:{port}")
    with caplog.at_level(logging.ERROR):
        outcome = sign_in(misnamed, "alice", PASSWORDS["alice"])
    assert_down_page(outcome, within=3)
    assert any("doesn't match" in r.getMessage() for r in caplog.records), [
        r.getMessage() for r in caplog.records
    ]


@pytest.mark.parametrize("how", ["closed port", "silent listener", "stopped slapd"])
def test_a_directory_that_is_down_answers_503_in_seconds(how, new_proxy, tmp_path: Path) -> None:
    """Nothing listening, something listening that never answers (ldap_timeout, 1 s
    here, must end the wait), or the directory stopped between two sign-ins: the login
    page says the directory cannot be reached, within a few seconds."""
    if how == "closed port":
        outcome = sign_in(new_proxy(ldap_url=f"ldap://127.0.0.1:{free_port()}"), "alice", "x")
        assert_down_page(outcome, within=3)
    elif how == "silent listener":
        with socket.socket() as silent:
            silent.bind(("127.0.0.1", 0))
            silent.listen(8)  # the kernel completes the handshake; nobody ever reads
            url = f"ldap://127.0.0.1:{silent.getsockname()[1]}"
            down = new_proxy(ldap_url=url, ldap_timeout=QUICK_TIMEOUT)
            outcome = sign_in(down, "alice", PASSWORDS["alice"])
        assert outcome.seconds >= QUICK_TIMEOUT * 0.9, "the timeout did not wait: no proof"
        assert_down_page(outcome, within=QUICK_TIMEOUT + 3)
    else:
        with Slapd(tmp_path) as other:
            other.add_user("dora", "dora's password", groups=["staff"])
            moving = new_proxy(
                ldap_url=other.url,
                ldap_ca_file=other.ca_file,
                ldap_user_dn=f"uid={{name}},{other.people_dn}",
                ldap_group_base=other.groups_dn,
                ldap_timeout=QUICK_TIMEOUT,
            )
            assert sign_in(moving, "dora", "dora's password").status == 302
        # The context has stopped it: its port is closed now.
        assert_down_page(sign_in(moving, "dora", "dora's password"), within=3)


@pytest.mark.parametrize("timeout", [5.0, 2.5])
def test_the_timeout_as_the_settings_give_it_signs_in(timeout, new_proxy) -> None:
    """ldap_timeout is a float (5.0 by default, 2.5 allowed), and ldap3 packs its receive
    timeout as whole seconds with struct.pack("LL"): given as it is, a float made every
    sign-in a 500 (fixed in 103a728; the other tests use the default too)."""
    outcome = sign_in(new_proxy(ldap_timeout=timeout), "alice", PASSWORDS["alice"])
    assert outcome.status == 302 and outcome.cookie


# -- 3. names that try to be a DN or a filter --------------------------------------------

INJECTIONS = [
    "*",
    "alice,ou=people",
    ")(uid=*",
    "alice)(uid=*",
    "*)(|(uid=*",
    "alice,ou=people,dc=example,dc=org",
    "uid=alice,ou=people,dc=example,dc=org",
    "x,uid=alice",
    "alice+uid=bob",
    "cn=admin,dc=example,dc=org",
    "alice\\2C",
    "#alice",
]


def test_names_that_try_to_be_a_dn_never_sign_anyone_in(proxy, search_proxy, slapd) -> None:
    """Wildcards, filter brackets, commas and "=" in the name, with alice's password (and
    the rootdn's): never a session, always the wrong-password page. slapd's log shows
    why: every bind the proxy made named one entry right under ou=people, the typed
    name being a single escaped RDN value."""
    since = log_size(slapd)
    people = parse_dn(slapd.people_dn)
    for name in INJECTIONS:
        for via in (proxy, search_proxy):
            for password in (PASSWORDS["alice"], slapd.admin_password):
                outcome = sign_in(via, name, password)
                assert outcome.status == 401, (name, outcome.status, outcome.body[:300])
                assert outcome.cookie == "", name
    binds = binds_until(proxy, slapd, since)
    assert len(binds) == len(INJECTIONS) * 4
    for dn in binds:
        rdns = parse_dn(dn)
        assert rdns[1:] == people and rdns[0][0] == "uid", dn


def test_a_name_that_looks_like_a_filter_gets_its_own_entry(
    proxy, search_proxy, slapd, backends
) -> None:
    """Accounts really named "*" and ")(uid=*" sign in as themselves, with their own mail
    and groups, on both ways of reading the entry. Unescaped in the search path's
    filter, "*" would match every person and take the first entry's (alice's) groups
    and mail: this is what proves the filter's escaping."""
    require_memberof(slapd)
    with slapd.admin() as conn:
        for name in ("*", ")(uid=*"):
            mail = f"{'star' if name == '*' else 'bracket'}@evil.example"
            slapd.add_user(name, PASSWORDS[name], mail, groups=["visitors"])
            conn.modify(slapd.user_dn(name), {"employeeType": [(ldap3.MODIFY_ADD, ["web"])]})
    try:
        for via in (proxy, search_proxy):
            for name, mail in (("*", "star@evil.example"), (")(uid=*", "bracket@evil.example")):
                cookie = signed_in_as(via, name)
                seen = opens(via, backends, "visitors", cookie)
                assert seen is not None, name
                assert identity_seen(seen) == (name, mail, "visitors")
                assert opens(via, backends, "staff", cookie) is None
    finally:
        for name in ("*", ")(uid=*"):
            slapd.remove_user(name)


def signed_in_as(proxy: Proxy, name: str) -> str:
    return signed_in(proxy, name, "/.site.visitors/page")
