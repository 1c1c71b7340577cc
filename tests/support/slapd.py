"""A real LDAP directory for the tests: Debian's slapd (OpenLDAP 2.5) on loopback, in a
directory of its own, seeded with users and groups through the protocol as the rootdn.

The LDAP login must meet a real server (StartTLS, certificate checks, ACLs, memberof),
not a mock. This slapd ignores the system one the Debian package may run on port 389: it
has its own slapd.conf (``-f``: simpler than cn=config built with slapadd, and still
supported by 2.5), free ports on 127.0.0.1, and runs as the current user (root in CI),
who owns its data directory.

The memberof overlay is loaded when /usr/lib/ldap has the module (Debian 12 does), so a
user's entry carries ``memberOf`` as in Active Directory; ``Directory.memberof`` says
whether it is on. ``memberOf`` is operational: ask for it by name.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import secrets
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import ldap3
import trustme
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn

from tests.support.servers import free_port
from tests.support.tools import require_tool

SLAPD = "/usr/sbin/slapd"
SCHEMA_DIR = Path("/etc/ldap/schema")
MODULE_DIR = Path("/usr/lib/ldap")
SCHEMAS = ("core", "cosine", "inetorgperson", "nis")
# memberOf on each member of a groupOfNames, kept right when a member entry goes (refint).
MEMBEROF = """overlay memberof
memberof-group-oc groupOfNames
memberof-member-ad member
memberof-memberof-ad memberOf
memberof-refint TRUE
"""


def ssha(password: str) -> str:
    """An RFC 2307 ``{SSHA}`` value (salted SHA-1), as slappasswd makes by default, so that
    the directory holds no clear password and the bind really checks a hash."""
    salt = secrets.token_bytes(8)
    digest = hashlib.sha1(password.encode() + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


class Directory:
    """slapd listening on ``url`` (ldap://, StartTLS offered) and ``ldaps_url``, with a
    certificate for 127.0.0.1 and localhost from a trustme CA (``ca_file``).

    Anonymous clients can only bind; an authenticated user reads people and groups.
    Users are inetOrgPerson entries under ou=people; groups are groupOfNames under
    ou=groups whose ``member`` values are user DNs. ``base_dn`` must start with dc=.
    Binds with a DN and an empty password are refused (slapd's default), as they
    should be."""

    def __init__(self, tmp_dir: str | os.PathLike[str], base_dn: str = "dc=example,dc=org"):
        self.dir = Path(tmp_dir)
        self.base_dn = base_dn
        self.people_dn = f"ou=people,{base_dn}"
        self.groups_dn = f"ou=groups,{base_dn}"
        self.admin_dn = f"cn=admin,{base_dn}"
        self.admin_password = secrets.token_urlsafe(16)
        self.memberof = (MODULE_DIR / "memberof.la").exists()
        self.port = self.ldaps_port = 0
        self.ca_file = str(self.dir / "ca.pem")
        self.log_file = self.dir / "slapd.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://127.0.0.1:{self.ldaps_port}"

    def __enter__(self) -> Directory:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the server ----------------------------------------------------------------

    def _write_config(self) -> Path:
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        ca.cert_pem.write_to_path(self.ca_file)
        cert_file, key_file = self.dir / "server.pem", self.dir / "server.key"
        cert.cert_chain_pems[0].write_to_path(str(cert_file))
        cert.private_key_pem.write_to_path(str(key_file))
        os.chmod(key_file, 0o600)
        data = self.dir / "data"
        data.mkdir(mode=0o700, exist_ok=True)
        base, people, groups = self.base_dn, self.people_dn, self.groups_dn
        schemas = "".join(f"include {SCHEMA_DIR / s}.schema\n" for s in SCHEMAS)
        config = f"""\
{schemas}
modulepath {MODULE_DIR}
moduleload back_mdb
{"moduleload memberof" if self.memberof else ""}
pidfile {self.dir / "slapd.pid"}
argsfile {self.dir / "slapd.args"}

TLSCACertificateFile {self.ca_file}
TLSCertificateFile {cert_file}
TLSCertificateKeyFile {key_file}
TLSVerifyClient never

# The root DSE and the schema, for authenticated clients only (ldap3 reads them).
access to dn.base="" by users read by * none
access to dn.base="cn=Subschema" by users read by * none

database mdb
maxsize 67108864
suffix "{base}"
rootdn "{self.admin_dn}"
rootpw {ssha(self.admin_password)}
directory {data}
index objectClass,uid,member eq
{MEMBEROF if self.memberof else ""}
access to attrs=userPassword by anonymous auth by * none
access to dn.subtree="{people}" by users read by * none
access to dn.subtree="{groups}" by users read by * none
access to dn.base="{base}" by users read by * none
access to * by * none
"""
        path = self.dir / "slapd.conf"
        path.write_text(config)
        return path

    def start(self, timeout: float = 15) -> Directory:
        """Start slapd and seed the base entry, ou=people and ou=groups; return once a
        TCP connect and a bind as the rootdn work on both ports."""
        require_tool(SLAPD)
        self.dir.mkdir(parents=True, exist_ok=True)
        config = self._write_config()
        self.port, self.ldaps_port = free_port(), free_port()
        while self.ldaps_port == self.port:
            self.ldaps_port = free_port()
        listen = f"{self.url}/ {self.ldaps_url}/"
        with open(self.log_file, "wb") as log:
            # -d keeps it in the foreground (a child we can stop) and logs to stderr;
            # "stats" logs each connection, bind and search, for when a test fails.
            self._proc = subprocess.Popen(
                [SLAPD, "-f", str(config), "-h", listen, "-d", "stats"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.dir,
            )
        try:
            self._wait_ready(timeout)
            self._seed()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout: float) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"slapd exited with {self._proc.returncode}:\n{self.output()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                # A full handshake, so that ldaps:// is known to serve our certificate.
                context = ssl.create_default_context(cafile=self.ca_file)
                with socket.create_connection(("127.0.0.1", self.ldaps_port), timeout=1) as s:
                    context.wrap_socket(s, server_hostname="127.0.0.1").close()
                with self.admin():
                    return
            except (OSError, LDAPException) as e:
                last = e
                time.sleep(0.05)  # polling for readiness, not waiting for luck
        raise RuntimeError(
            f"slapd not ready on {self.url} after {timeout} s ({last!r}):\n{self.output()}"
        )

    def output(self) -> str:
        """What slapd has logged so far (its configuration errors, connections, binds)."""
        try:
            return self.log_file.read_text(errors="replace")[-20000:]
        except OSError:
            return ""

    def stop(self, timeout: float = 5) -> None:
        """SIGTERM, then SIGKILL if slapd has not exited within ``timeout``."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)

    # -- seeding, as the rootdn ----------------------------------------------------

    @contextlib.contextmanager
    def admin(self) -> Iterator[ldap3.Connection]:
        """A rootdn connection over plain ldap:// on loopback, bound on entry and closed
        on exit (ldap3's own ``with`` would leave an auto-bound one open); any failed
        operation raises."""
        server = ldap3.Server(self.url, get_info=ldap3.NONE, connect_timeout=5)
        options = dict(auto_bind=ldap3.AUTO_BIND_NO_TLS, raise_exceptions=True, receive_timeout=10)
        conn = ldap3.Connection(server, self.admin_dn, self.admin_password, **options)
        try:
            yield conn
        finally:
            conn.unbind()

    def _seed(self) -> None:
        # The base is a dcObject, so base_dn must start with dc=.
        dc = self.base_dn.split(",")[0].split("=", 1)[1]
        with self.admin() as conn:
            conn.add(self.base_dn, ["dcObject", "organization"], {"dc": dc, "o": dc})
            for dn in (self.people_dn, self.groups_dn):
                conn.add(dn, "organizationalUnit")

    def user_dn(self, uid: str) -> str:
        return f"uid={escape_rdn(uid)},{self.people_dn}"

    def group_dn(self, name: str) -> str:
        return f"cn={escape_rdn(name)},{self.groups_dn}"

    def add_user(
        self,
        uid: str,
        password: str,
        mail: str | None = None,
        cn: str | None = None,
        groups: Iterable[str] = (),
    ) -> str:
        """Add an inetOrgPerson with an {SSHA} password and put it in ``groups``; return
        its DN."""
        attrs: dict[str, Any] = {"uid": uid, "cn": cn or uid, "sn": uid}
        attrs["userPassword"] = ssha(password)
        if mail is not None:
            attrs["mail"] = mail
        dn = self.user_dn(uid)
        with self.admin() as conn:
            conn.add(dn, "inetOrgPerson", attrs)
        self.set_groups(uid, groups)
        return dn

    def groups_of(self, uid: str) -> set[str]:
        """The cn's of the groups that list the user as a member (as the rootdn)."""
        with self.admin() as conn:
            conn.search(
                self.groups_dn,
                f"(&(objectClass=groupOfNames)(member={escape_filter_chars(self.user_dn(uid))}))",
                attributes=["cn"],
            )
            return {entry.cn.value for entry in conn.entries}

    def set_groups(self, uid: str, groups: Iterable[str]) -> None:
        """Make the user a member of exactly ``groups``: missing groups are created, and
        a group left without members is deleted (groupOfNames needs at least one)."""
        dn, wanted = self.user_dn(uid), set(groups)
        current = self.groups_of(uid)
        with self.admin() as conn:
            for name in sorted(wanted - current):
                group = self.group_dn(name)
                if conn.search(self.groups_dn, f"(cn={escape_filter_chars(name)})", ldap3.LEVEL):
                    conn.modify(group, {"member": [(ldap3.MODIFY_ADD, [dn])]})
                else:
                    conn.add(group, "groupOfNames", {"cn": name, "member": [dn]})
            for name in sorted(current - wanted):
                group = self.group_dn(name)
                conn.search(group, "(objectClass=*)", ldap3.BASE, attributes=["member"])
                if len(conn.entries[0].member.values) <= 1:
                    conn.delete(group)
                else:
                    conn.modify(group, {"member": [(ldap3.MODIFY_DELETE, [dn])]})

    def remove_user(self, uid: str) -> None:
        """Take the user out of every group (deleting groups left empty), then delete it."""
        self.set_groups(uid, ())
        with self.admin() as conn:
            conn.delete(self.user_dn(uid))
