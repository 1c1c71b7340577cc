"""The sign-in settings: an OpenID Connect provider, an LDAP directory (or Active
Directory), and the names of the identity headers a site may be given. Declared like
every other setting (handlers/config/spec.py); ``Options`` (handlers/config/options.py)
takes them in, so they are ``config.<name>`` in the settings file and rows of
docs/settings.md like the rest.

Any of the three ways of signing in may be on at once: ``config.users`` (a local list),
``oidc_issuer`` (the provider's page does the password), ``ldap_url`` (the proxy's login
form, checked by a bind as the user).
"""

from __future__ import annotations

from dataclasses import dataclass

from handlers.config.spec import setting
from handlers.config.values import (
    HEADER_NAME,
    HTTP_URL,
    LDAP_URL,
    PEM_FILE,
    SECRET_FILE,
    TEXT,
    WORDS,
)


@dataclass(frozen=True)
class SignInOptions:
    """How people sign in, beyond config.users."""

    oidc_issuer: str | None = setting(None, kind=HTTP_URL)
    """The OpenID Connect provider's issuer URL, exactly as the provider spells it (https;
    http only on this host); its endpoints and keys are read from
    `<issuer>/.well-known/openid-configuration`. None: no OIDC sign-in."""

    oidc_client_id: str | None = setting(None, kind=TEXT)
    """This proxy's client id at the provider."""

    oidc_client_secret: str | None = setting(None, kind=TEXT)
    """Its client secret (or give oidc_client_secret_file instead)."""

    oidc_client_secret_file: str | None = setting(None, kind=SECRET_FILE)
    """A file holding the client secret (read at start-up, surrounding blanks removed)."""

    oidc_scopes: tuple[str, ...] = setting(("email", "openid", "profile"), kind=WORDS)
    """Scopes asked for; add the provider's scope for groups if it has one ("groups")."""

    oidc_user_claim: str = setting("preferred_username")
    """The ID token claim that names the user (falls back to "sub" when absent)."""

    oidc_groups_claim: str = setting("groups")
    """The ID token claim that lists the user's groups."""

    oidc_email_domains: tuple[str, ...] = setting((), kind=WORDS)
    """Only users whose verified e-mail address is in one of these domains may sign in
    (empty: any)."""

    oidc_redirect_url: str | None = setting(None, kind=HTTP_URL)
    """The callback URL registered at the provider, `https://proxy.example/.proxy/oidc/
    callback`. None: built from each request's host and scheme (behind nginx: its
    X-Forwarded-Proto and Host)."""

    oidc_timeout: float = setting(10.0, low=0, high=300, unit="seconds")
    """How long a call to the provider (discovery, keys, token) may take."""

    oidc_leeway: int = setting(60, low=0, high=600, unit="seconds")
    """Clock difference with the provider tolerated when checking a token's times."""

    ldap_url: str | None = setting(None, kind=LDAP_URL)
    """The directory: `ldaps://dc.example:636`, or `ldap://...` with StartTLS. None: no
    LDAP sign-in."""

    ldap_starttls: bool = setting(True)
    """With an ldap:// URL, upgrade to TLS before sending a password (False only for a
    directory on the same host)."""

    ldap_ca_file: str | None = setting(None, kind=PEM_FILE)
    """CA certificates the directory's certificate is checked against (None: the
    system's)."""

    ldap_user_dn: str | None = setting(None, kind=TEXT)
    """What to bind as, with `{name}` for the typed name: `uid={name},ou=people,dc=example,
    dc=org`, or Active Directory's `{name}@corp.example`."""

    ldap_user_base: str | None = setting(None, kind=TEXT)
    """Where to read the user's own entry after binding (mail, memberOf); None: the bound
    DN itself (needs a DN in ldap_user_dn)."""

    ldap_user_filter: str = setting("(uid={name})")
    """How to find the user's entry under ldap_user_base (Active Directory:
    `(sAMAccountName={name})`)."""

    ldap_group_base: str | None = setting(None, kind=TEXT)
    """Where groups are searched for the user's DN (None: only the entry's memberOf)."""

    ldap_group_filter: str = setting("(|(member={dn})(uniqueMember={dn}))")
    """Which groups hold the user, with `{dn}` for the user's DN."""

    ldap_group_attribute: str = setting("cn")
    """The attribute of a group entry that names it."""

    ldap_name_attribute: str = setting("uid")
    """The attribute of the user's entry that names the user, as the directory spells
    it: "ALICE" signs in as alice (Active Directory: `sAMAccountName`)."""

    ldap_email_attribute: str = setting("mail")
    """The attribute of the user's entry that holds the e-mail address."""

    ldap_timeout: float = setting(5.0, low=0, high=60, unit="seconds")
    """How long the directory may take to connect or answer; past it the login page says
    the directory cannot be reached."""

    identity_user_header: str = setting("X-Forwarded-User", kind=HEADER_NAME)
    """The header naming the signed-in user to a site with pass_identity=True. Whatever a
    client sends under this name (and the next two) is always removed."""

    identity_email_header: str = setting("X-Forwarded-Email", kind=HEADER_NAME)
    """The header with the user's e-mail address."""

    identity_groups_header: str = setting("X-Forwarded-Groups", kind=HEADER_NAME)
    """The header with the user's groups, comma-separated."""

    def client_secret(self) -> str:
        """The OIDC client secret: as given, or read from its file now (surrounding blanks
        removed); OSError or UnicodeError when the file cannot be read."""
        if self.oidc_client_secret is not None or self.oidc_client_secret_file is None:
            return self.oidc_client_secret or ""
        with open(self.oidc_client_secret_file, encoding="utf-8") as f:
            return f.read().strip()


__all__ = ["SignInOptions"]
