"""Signing in against an LDAP directory or Active Directory, through the proxy's login
form: a bind as the user proves the password; the user's entry gives the e-mail
address, and the directory the groups.

ldap3 does the protocol. It blocks, so each sign-in runs in one of the directory's own
threads and the IOLoop never waits; every step (connect, StartTLS, bind, each search)
has ``ldap_timeout``, and a sign-in past MAX_WAITING is answered at once. The password goes
only over TLS: ldaps://, or StartTLS on ldap:// (``ldap_starttls``), with the
directory's certificate checked against ``ldap_ca_file`` or the system's CAs, and its
name against the URL's host. An empty password is refused before any bind: LDAP would
take it for an anonymous bind and say yes (RFC 4513, section 5.1.2).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import ssl
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import ldap3
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn, parse_dn

from handlers.config.signin import SignInOptions
from handlers.door.identity import Identity

log = logging.getLogger(__name__)

_INVALID_CREDENTIALS = 49  # the LDAP result code for a wrong name or password
THREADS = 4  # sign-ins asking the directory at once
MAX_WAITING = 32  # sign-ins running or queued; past that, "cannot be reached" at once


class DirectoryDown(Exception):
    """The directory could not be asked (unreachable, TLS refused, too slow)."""


class Directory:
    """One directory, as ``config.ldap_*`` describe it."""

    def __init__(self, signin: SignInOptions) -> None:
        assert signin.ldap_url is not None and signin.ldap_user_dn is not None
        url = urllib.parse.urlsplit(signin.ldap_url)
        self.ldaps = url.scheme == "ldaps"
        self.starttls = not self.ldaps and signin.ldap_starttls
        self.signin = signin
        # A DN to bind as ("uid={name},..."), or Active Directory's name@domain.
        self.by_dn = "=" in signin.ldap_user_dn
        # Its own threads: a slow directory holds these, never the default executor's.
        self.threads = ThreadPoolExecutor(THREADS, thread_name_prefix="ldap")
        self.waiting = 0  # sign-ins running or queued for those threads
        tls = ldap3.Tls(
            validate=ssl.CERT_REQUIRED,
            ca_certs_file=signin.ldap_ca_file,
            valid_names=[url.hostname or ""],
        )
        self.server = ldap3.Server(
            url.hostname or "",
            port=url.port or (636 if self.ldaps else 389),
            use_ssl=self.ldaps,
            tls=tls if self.ldaps or self.starttls else None,
            connect_timeout=signin.ldap_timeout,
            get_info=ldap3.NONE,
        )

    async def sign_in(self, name: str, password: str) -> Identity | None:
        """The identity of ``name`` if ``password`` is right; None if not (or the name
        is empty or unknown); DirectoryDown when the directory cannot say, or when
        MAX_WAITING sign-ins already wait for it (a slow directory must not gather an
        unbounded queue, nor take the threads argon2 and name lookups need)."""
        if not name or not password:
            return None
        if self.waiting >= MAX_WAITING:
            raise DirectoryDown(f"{self.waiting} sign-ins already wait for the directory")
        loop = asyncio.get_running_loop()
        self.waiting += 1
        try:
            return await loop.run_in_executor(self.threads, self._sign_in, name, password)
        finally:
            self.waiting -= 1

    def _sign_in(self, name: str, password: str) -> Identity | None:
        signin = self.signin
        assert signin.ldap_user_dn is not None
        bind_as = signin.ldap_user_dn.replace("{name}", self._in_dn(name))
        connection = ldap3.Connection(
            self.server,
            user=bind_as,
            password=password,
            # Whole seconds: on Linux ldap3 sets SO_RCVTIMEO with struct.pack("LL", ...),
            # which refuses a float (5.0 made every sign-in fail).
            receive_timeout=max(1, math.ceil(signin.ldap_timeout)),
            read_only=True,
            raise_exceptions=False,
        )
        try:
            connection.open()
            if self.starttls and not connection.start_tls():
                raise DirectoryDown(f"StartTLS refused: {connection.result}")
            if not connection.bind():
                if connection.result.get("result") == _INVALID_CREDENTIALS:
                    return None
                raise DirectoryDown(f"bind: {connection.result.get('description')}")
            found = self._entry(connection, name, bind_as)
            if found is None:
                # Bound, but ldap_user_filter does not select the entry: a filter that
                # narrows who may sign in ("(memberOf=cn=web,...)") is obeyed.
                return None
            dn, spelt, email, groups = found
            groups |= self._groups(connection, dn, name)
            return Identity(spelt, email, frozenset(groups), "ldap")
        except DirectoryDown:
            raise
        except (LDAPException, OSError, ssl.SSLError) as exc:
            raise DirectoryDown(f"{exc.__class__.__name__}: {exc}") from None
        except Exception as exc:  # ldap3 lets others through (struct.error, ValueError)
            log.exception("signing in %r against the directory failed", name)
            raise DirectoryDown(f"{exc.__class__.__name__}: {exc}") from None
        finally:
            # After a refused TLS handshake ldap3 has closed the socket: unbind cannot
            # send, and its error must not replace the DirectoryDown raised above.
            with contextlib.suppress(LDAPException, OSError):
                connection.unbind()

    def _in_dn(self, name: str) -> str:
        """``name`` as it may stand in the bind DN template: escaped as an RDN value in a
        DN, as it is in the user principal form (name@domain)."""
        return escape_rdn(name) if self.by_dn else name

    def _entry(
        self, connection: ldap3.Connection, name: str, bind_as: str
    ) -> tuple[str, str, str | None, set[str]] | None:
        """The user's DN, name as the directory spells it, e-mail address and the groups
        its memberOf names; None when ``ldap_user_base`` is searched and the filter
        selects no entry."""
        signin = self.signin
        attributes = [signin.ldap_email_attribute, signin.ldap_name_attribute, "memberOf"]
        if signin.ldap_user_base is None:
            connection.search(bind_as, "(objectClass=*)", ldap3.BASE, attributes=attributes)
        else:
            query = signin.ldap_user_filter.replace("{name}", escape_filter_chars(name))
            if not self.by_dn:
                # Bound as name@domain: the entry must be that account's, not another one
                # the filter also matches. Active Directory takes the bind as the account
                # whose userPrincipalName it is, or as sAMAccountName@its domain (the
                # implicit UPN), and sAMAccountName is unique in a domain.
                principal = escape_filter_chars(bind_as)
                account = escape_filter_chars(name)
                query = f"(&{query}(|(userPrincipalName={principal})(sAMAccountName={account})))"
            connection.search(signin.ldap_user_base, query, ldap3.SUBTREE, attributes=attributes)
        entries = [e for e in connection.response or [] if e.get("type") == "searchResEntry"]
        if self.by_dn:
            # Only the entry that proved the password may lend its name and groups.
            entries = [e for e in entries if _same_dn(str(e.get("dn") or ""), bind_as)]
        if len(entries) != 1:
            if signin.ldap_user_base is None:
                return bind_as, name, None, set()
            return None  # the filter selects none of this account (or it is ambiguous)
        entry = entries[0]
        values = entry.get("attributes", {})
        mail = values.get(signin.ldap_email_attribute)
        email = (mail[0] if mail else None) if isinstance(mail, list) else mail
        spelt = values.get(signin.ldap_name_attribute)
        spelt = (spelt[0] if spelt else None) if isinstance(spelt, list) else spelt
        groups = {_first_value(dn) for dn in values.get("memberOf", []) or []}
        dn = str(entry.get("dn") or bind_as)
        return dn, spelt or name, email or None, {g for g in groups if g}

    def _groups(self, connection: ldap3.Connection, dn: str, name: str) -> set[str]:
        """The groups under ``ldap_group_base`` that hold the user."""
        signin = self.signin
        if signin.ldap_group_base is None:
            return set()
        query = signin.ldap_group_filter.replace("{dn}", escape_filter_chars(dn))
        query = query.replace("{name}", escape_filter_chars(name))
        attribute = signin.ldap_group_attribute
        connection.search(signin.ldap_group_base, query, ldap3.SUBTREE, attributes=[attribute])
        out = set()
        for entry in connection.response or ():
            if entry.get("type") != "searchResEntry":
                continue
            value = entry.get("attributes", {}).get(attribute)
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, str) and item:
                    out.add(item)
        return out


def _same_dn(a: str, b: str) -> bool:
    """Whether two DNs name one entry: attribute types and values compared ignoring case
    (as directories compare uid and cn) and escapes, blanks after commas ignored, and a
    multi-valued RDN ("cn=a+uid=b") compared as the set it is."""
    try:
        return _rdns(a) == _rdns(b)
    except LDAPException:
        return False


def _rdns(dn: str) -> list[frozenset[tuple[str, str]]]:
    rdns: list[frozenset[tuple[str, str]]] = []
    current: set[tuple[str, str]] = set()
    for kind, value, separator in parse_dn(dn, strip=True):
        current.add((kind.lower(), _unescaped(value).lower()))
        if separator != "+":
            rdns.append(frozenset(current))
            current = set()
    return rdns


_ESCAPE = re.compile(r"\\([0-9A-Fa-f]{2}|.)")


def _unescaped(value: str) -> str:
    """An RDN value without its escapes ("\\=" and "\\3D" are both "="; RFC 4514), so
    that two spellings of one DN compare equal. Hex pairs are UTF-8 bytes."""
    raw = bytearray()
    position = 0
    for match in _ESCAPE.finditer(value):
        raw += value[position : match.start()].encode("utf-8")
        code = match.group(1)
        raw += bytes.fromhex(code) if len(code) == 2 else code.encode("utf-8")
        position = match.end()
    raw += value[position:].encode("utf-8")
    return raw.decode("utf-8", "replace")


def _first_value(dn: str) -> str:
    """The value of a DN's first RDN: "staff" of "cn=staff,ou=groups,dc=example". (So
    two groups of one name in two branches are one group to the proxy.)"""
    try:
        return str(parse_dn(dn)[0][1])
    except (LDAPException, IndexError):
        return ""


__all__ = ["Directory", "DirectoryDown"]
