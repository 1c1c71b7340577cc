"""The real slapd of tests/support/slapd.py behaves as the LDAP login will rely on: binds
over StartTLS and ldaps:// with the certificate checked against the test CA (and refused
against the system CAs, so the check is real), ACLs that hide everything from anonymous
clients, groups found by ``member``, ``memberOf`` from the overlay, and group changes seen
at the next search."""

from __future__ import annotations

import contextlib
import ssl
import subprocess
from collections.abc import Iterator

import ldap3
import pytest
from ldap3.core.exceptions import (
    LDAPException,
    LDAPInvalidCredentialsResult,
    LDAPSocketOpenError,
    LDAPStartTLSError,
)
from ldap3.utils.conv import escape_filter_chars

from tests.support.slapd import Directory
from tests.support.tools import IN_CI, require_tool

PASSWORD = "correct horse battery staple"
# The handshake itself refuses the chain (not a later hostname check).
VERIFY_FAILED = r"(?i)certificate verify failed"


@pytest.fixture(scope="module")
def directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Directory]:
    with Directory(tmp_path_factory.mktemp("slapd")) as d:
        d.add_user("alice", PASSWORD, mail="alice@example.org", cn="Alice A", groups=["staff"])
        d.set_groups("alice", ["staff", "admins"])
        yield d


def connect(
    url: str, user: str, password: str, ca_file: str | None, start_tls: bool
) -> ldap3.Connection:
    """Bind with the certificate checked against ``ca_file``, or against the system CAs
    when it is None; StartTLS on an ldap:// URL first when ``start_tls``."""
    tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=ca_file)
    server = ldap3.Server(url, tls=tls, get_info=ldap3.NONE, connect_timeout=5)
    conn = ldap3.Connection(server, user, password, raise_exceptions=True, receive_timeout=5)
    conn.open()
    try:
        if start_tls:
            conn.start_tls()
        conn.bind()
    except LDAPException:
        # After a failed handshake the socket is gone and unbind cannot send: just close.
        with contextlib.suppress(LDAPException, OSError):
            conn.unbind()
        raise
    return conn


def urls(d: Directory) -> list[tuple[str, bool]]:
    return [(d.url, True), (d.ldaps_url, False)]


def test_bind_over_starttls_and_ldaps_checks_the_password(directory: Directory) -> None:
    dn = directory.user_dn("alice")
    for url, start_tls in urls(directory):
        conn = connect(url, dn, PASSWORD, directory.ca_file, start_tls)
        try:
            assert conn.bound and conn.server.ssl != start_tls
            assert conn.tls_started or conn.server.ssl
            assert conn.extend.standard.who_am_i() == f"dn:{dn}"
        finally:
            conn.unbind()
        with pytest.raises(LDAPInvalidCredentialsResult):
            connect(url, dn, PASSWORD + "x", directory.ca_file, start_tls)


def test_a_dn_with_an_empty_password_is_not_a_login(directory: Directory) -> None:
    # RFC 4513's "unauthenticated bind": a client that forwarded an empty password would
    # log nobody in, yet succeed. ldap3 refuses to send one, so ldapwhoami does; slapd
    # must refuse it (its default without "allow bind_anon_cred").
    whoami = require_tool("ldapwhoami")
    dn = directory.user_dn("alice")
    command = [whoami, "-x", "-H", directory.url, "-D", dn]
    refused = subprocess.run([*command, "-w", ""], capture_output=True, text=True, timeout=10)
    assert refused.returncode == 53, refused  # unwillingToPerform
    accepted = subprocess.run(
        [*command, "-w", PASSWORD], capture_output=True, text=True, timeout=10
    )
    assert accepted.stdout.strip() == f"dn:{dn}", accepted


def test_the_certificate_also_names_localhost(directory: Directory) -> None:
    url = directory.ldaps_url.replace("127.0.0.1", "localhost")
    conn = connect(url, directory.user_dn("alice"), PASSWORD, directory.ca_file, False)
    assert conn.bound
    conn.unbind()


def test_system_cas_alone_refuse_the_certificate(directory: Directory) -> None:
    dn = directory.user_dn("alice")
    with pytest.raises(LDAPStartTLSError, match=VERIFY_FAILED):
        connect(directory.url, dn, PASSWORD, None, True)
    with pytest.raises(LDAPSocketOpenError, match=VERIFY_FAILED):
        connect(directory.ldaps_url, dn, PASSWORD, None, False)


def test_anonymous_clients_read_nothing(directory: Directory) -> None:
    conn = connect(directory.ldaps_url, "", "", directory.ca_file, False)
    try:
        for base in (directory.base_dn, directory.people_dn, directory.groups_dn):
            try:
                conn.search(base, "(objectClass=*)", attributes=["*"])
            except LDAPException:
                continue  # noSuchObject: the base itself is hidden, which is fine too
            assert conn.entries == []
    finally:
        conn.unbind()


def test_a_user_reads_users_but_no_password(directory: Directory) -> None:
    conn = connect(directory.url, directory.user_dn("alice"), PASSWORD, directory.ca_file, True)
    try:
        conn.search(directory.people_dn, "(uid=alice)", attributes=["mail", "cn", "userPassword"])
        [entry] = conn.entries
        assert entry.mail.value == "alice@example.org"
        assert entry.cn.value == "Alice A"
        # ldap3 lists every requested attribute, empty when slapd sent none.
        sent = {name for name, values in conn.response[0]["raw_attributes"].items() if values}
        assert sent == {"mail", "cn"}
    finally:
        conn.unbind()


def groups_seen_by(d: Directory, uid: str) -> tuple[set[str], set[str]]:
    """(cn's of the groups whose ``member`` is the user, its ``memberOf`` DNs), as the
    user sees them after binding with its own password."""
    dn = d.user_dn(uid)
    conn = connect(d.url, dn, PASSWORD, d.ca_file, True)
    try:
        member = escape_filter_chars(dn)
        conn.search(
            d.groups_dn, f"(&(objectClass=groupOfNames)(member={member}))", attributes=["cn"]
        )
        cns = {e.cn.value for e in conn.entries}
        conn.search(dn, "(objectClass=*)", ldap3.BASE, attributes=["memberOf"])
        member_of = set(conn.entries[0].memberOf.values) if "memberOf" in conn.entries[0] else set()
        return cns, member_of
    finally:
        conn.unbind()


def require_memberof(d: Directory) -> None:
    if not d.memberof:
        if IN_CI:
            pytest.fail("slapd's memberof module is missing (/usr/lib/ldap/memberof.la)")
        pytest.skip("slapd's memberof module is missing")


def test_groups_by_member_and_memberof(directory: Directory) -> None:
    cns, member_of = groups_seen_by(directory, "alice")
    assert cns == {"staff", "admins"}
    require_memberof(directory)
    assert member_of == {directory.group_dn("staff"), directory.group_dn("admins")}


def test_set_groups_is_seen_at_the_next_search(directory: Directory) -> None:
    directory.add_user("bob", PASSWORD, groups=["staff", "ops"])
    assert groups_seen_by(directory, "bob")[0] == {"staff", "ops"}
    directory.set_groups("bob", ["staff"])
    cns, member_of = groups_seen_by(directory, "bob")
    assert cns == {"staff"}
    # ops had bob alone: a groupOfNames cannot be empty, so it is gone; staff keeps alice.
    assert directory.groups_of("alice") == {"staff", "admins"}
    assert members(directory, "ops") is None
    require_memberof(directory)
    assert member_of == {directory.group_dn("staff")}


def test_a_removed_user_cannot_bind(directory: Directory) -> None:
    directory.add_user("carol", PASSWORD, groups=["staff"])
    directory.remove_user("carol")
    with pytest.raises(LDAPInvalidCredentialsResult):
        connect(directory.url, directory.user_dn("carol"), PASSWORD, directory.ca_file, True)
    assert directory.user_dn("carol") not in members(directory, "staff")
    assert directory.user_dn("alice") in members(directory, "staff")


def members(d: Directory, group: str) -> set[str] | None:
    """The group's ``member`` DNs, read as the rootdn; None when there is no such group."""
    with d.admin() as conn:
        conn.search(d.groups_dn, f"(cn={escape_filter_chars(group)})", attributes=["member"])
        return set(conn.entries[0].member.values) if conn.entries else None
