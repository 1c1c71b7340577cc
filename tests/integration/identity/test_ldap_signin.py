"""Signing in against a real slapd (tests/support/slapd.py) through the proxy's login form,
over real HTTP, when it goes well: StartTLS and ldaps:// with the certificate checked,
groups from the directory deciding which sites open, identity headers for the sites that
ask (one name per person, whatever its case), groups read again at each sign-in, the
entry found by a search as Active Directory has it, and every outcome in the audit
trail. What must fail is in test_ldap_failures.py.

A mock of ldap3 would agree with whatever the proxy asks of it; slapd does not: it
checks the password's hash, refuses an unknown DN, normalises DNs as a directory does,
applies ACLs and keeps memberOf. Each backend counts the requests it got, so that
"refused" also means "never sent upstream". Every try comes from its own client address
(X-Real-IP from 127.0.0.1, a trusted proxy by default) unless a test says otherwise, so
that the per-address throttle of one test does not leak into the next. slapd, the
backends and the proxies are conftest.py's, shared with test_ldap_failures.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support import Proxy, free_port
from tests.support.identity import (
    PASSWORDS,
    get,
    identity_seen,
    new_client,
    opens,
    require_memberof,
    sign_in,
    signed_in,
    wait_for_line,
)


@pytest.fixture(scope="module")
def ldaps_proxy(new_proxy, slapd) -> Proxy:
    return new_proxy(ldap_url=slapd.ldaps_url)


# -- 1. signing in, over StartTLS and over ldaps:// ---------------------------------------


@pytest.mark.parametrize("scheme", ["starttls", "ldaps"])
def test_sign_in_opens_the_groups_sites_and_tells_them_who(
    scheme, proxy, ldaps_proxy, backends
) -> None:
    """The right password gives a session and a redirect to ``next``; the directory's
    groups decide which sites open; a site with pass_identity hears the user, the mail
    attribute and the groups from the proxy, never from the client."""
    via = proxy if scheme == "starttls" else ldaps_proxy
    cookie = signed_in(via, "alice")
    seen = opens(via, backends, "staff", cookie)
    assert seen is not None, "alice is in staff"
    assert identity_seen(seen) == ("alice", "alice@example.org", "admins,auditors,staff")
    assert opens(via, backends, "ops", cookie) is None  # a group alice is not in: 403
    # The site list shows the sites she may open, and only those.
    status, page = get(via, "/.proxy/", cookie)
    assert status == 200 and b"<b id=user>alice</b>" in page
    listed = set(re.findall(rb'data-site="([^"]+)"', page))
    assert listed == {b"staff", b"everyone"}
    # Without the session nothing opens, and nothing reaches the backend.
    assert opens(via, backends, "staff", "") is None


# -- 2. one name per person, whatever its case ------------------------------------------


def test_the_signed_in_name_is_the_directorys(proxy, backends) -> None:
    """A site that trusts X-Forwarded-User must hear one name per person: "ALICE" and
    "Alice" bind as alice's entry, so they are alice (or are refused), never a new
    user whose name differs by case."""
    for variant in ("ALICE", "Alice"):
        outcome = sign_in(proxy, variant, PASSWORDS["alice"])
        if outcome.status == 401:
            continue
        assert outcome.status == 302
        seen = opens(proxy, backends, "staff", outcome.cookie)
        assert seen is not None and seen.header("X-Forwarded-User") == "alice", variant


# -- 3. groups follow the directory ------------------------------------------------------


def test_groups_follow_the_directory_at_the_next_sign_in(proxy, slapd, backends) -> None:
    """Taken out of ops in the directory, carol's next sign-in no longer opens the ops
    site; put back, it does again; deleted, she cannot sign in.

    By design the session she already holds keeps the groups it was issued with until
    it expires (config.session_seconds): sessions are signed cookies, not server state,
    so the proxy does not ask the directory again on each request."""
    slapd.add_user("carol", PASSWORDS["carol"], "carol@example.org", groups=["staff", "ops"])
    before = signed_in(proxy, "carol")
    seen = opens(proxy, backends, "ops", before)
    assert seen is not None and identity_seen(seen)[2] == "ops,staff"

    slapd.set_groups("carol", ["staff"])
    after = signed_in(proxy, "carol")
    assert opens(proxy, backends, "ops", after) is None
    seen = opens(proxy, backends, "staff", after)
    assert seen is not None and identity_seen(seen)[2] == "staff"
    # The session issued before the change still carries ops: the design, see above.
    assert opens(proxy, backends, "ops", before) is not None

    slapd.set_groups("carol", ["staff", "ops"])
    assert opens(proxy, backends, "ops", signed_in(proxy, "carol")) is not None

    slapd.remove_user("carol")
    outcome = sign_in(proxy, "carol", PASSWORDS["carol"])
    assert outcome.status == 401 and outcome.cookie == ""


# -- 4. the entry found by a search (Active Directory's way) -----------------------------


def test_the_entry_is_searched_for_under_ldap_user_base(search_proxy, slapd, backends) -> None:
    """With ldap_user_base and ldap_user_filter, the entry (mail, memberOf) is the one the
    filter finds, not the bound DN's: alice, a "web" person, gets her mail and the groups
    of her memberOf (not auditors, which only a group search finds); frank binds as well
    but the filter does not select him, and a filter that narrows who may sign in is
    obeyed: he is refused. (Active Directory's "{name}@domain" bind cannot be tried against slapd's
    simple bind; the search is the part it depends on.)"""
    require_memberof(slapd)
    cookie = signed_in(search_proxy, "alice")
    seen = opens(search_proxy, backends, "staff", cookie)
    assert seen is not None
    assert identity_seen(seen) == ("alice", "alice@example.org", "admins,staff")

    outcome = sign_in(search_proxy, "frank", PASSWORDS["frank"], "/.site.everyone/page")
    # The filter narrows who may sign in: frank's password is right, and he is refused.
    assert outcome.status == 401 and not outcome.cookie


# -- 5. the audit trail ------------------------------------------------------------------


def test_sign_ins_and_failures_are_audited(new_proxy, slapd, tmp_path: Path) -> None:
    """The access log holds a line per sign-in, failure and refusal, with the method and
    the reason, and never a password; the metrics count them by method and result."""
    log_file = tmp_path / "access.log"
    audited = new_proxy(access_log=str(log_file))
    client = new_client()
    assert sign_in(audited, "alice", PASSWORDS["alice"], client=client).status == 302
    cookie = signed_in(audited, "alice")
    assert sign_in(audited, "alice", "not her password", client=client).status == 401
    status, _ = get(audited, "/.site.ops/page", cookie, **{"X-Real-IP": client})
    assert status == 403
    down_log = tmp_path / "down.log"
    down = new_proxy(access_log=str(down_log), ldap_url=f"ldap://127.0.0.1:{free_port()}")
    assert sign_in(down, "alice", PASSWORDS["alice"], client=client).status == 503

    wait_for_line(log_file, '"AUDIT refused /.site.ops/page"')
    lines = log_file.read_text().splitlines()
    audit = [line for line in lines if '"AUDIT ' in line]
    assert any(
        line.startswith(f"{client} - alice [")
        and '"AUDIT sign-in /.proxy/login" 302' in line
        and "method=ldap" in line
        for line in audit
    ), audit
    assert any(
        line.startswith(f"{client} - alice [")
        and '"AUDIT sign-in-failed /.proxy/login" 401' in line
        and 'reason="wrong name or password"' in line
        for line in audit
    ), audit
    assert any(
        '"AUDIT refused /.site.ops/page" 403' in line and "site=ops" in line for line in audit
    ), audit
    [down_line] = [line for line in down_log.read_text().splitlines() if '"AUDIT ' in line]
    assert '"AUDIT sign-in-failed /.proxy/login" 503' in down_line
    assert "method=ldap" in down_line and 'reason="directory unreachable"' in down_line
    for text in (log_file.read_text(), down_log.read_text()):
        assert PASSWORDS["alice"] not in text and "not her password" not in text

    status, metrics = get(audited, "/.proxy/metrics", **{"X-Real-IP": "127.0.0.1"})
    assert status == 200
    assert b'web_proxy_logins_total{method="ldap",result="sign-in"} 2.0' in metrics
    assert b'web_proxy_logins_total{method="-",result="sign-in-failed"} 1.0' in metrics
    status, metrics = get(down, "/.proxy/metrics", **{"X-Real-IP": "127.0.0.1"})
    assert b'web_proxy_logins_total{method="ldap",result="sign-in-failed"} 1.0' in metrics
