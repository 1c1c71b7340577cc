"""Who is signed in, without a socket: the session cookie that carries an Identity, the
identity headers a backend may be told, and the sign-in settings' checks."""

from __future__ import annotations

import time

import pytest
from tornado.web import create_signed_value

from filters.names import SESSION_COOKIE
from handlers.config.errors import ConfigError
from handlers.config.options import Options
from handlers.door.identity import MAX_COOKIE_BYTES, Identity, Sessions, identity_fields

SECRET = "a test secret, long enough"


def _sessions(named=frozenset({"staff"}), all_groups=False, seconds=3600) -> Sessions:
    return Sessions(SECRET, seconds, frozenset(named), all_groups)


def test_a_session_carries_the_identity_and_only_the_named_groups():
    sessions = _sessions()
    alice = Identity("alice", "alice@example.org", frozenset({"staff", "chess-club"}), "oidc")
    back = sessions.identity(sessions.issue(alice))
    assert back == Identity("alice", "alice@example.org", frozenset({"staff"}), "oidc")
    everything = _sessions(all_groups=True)
    assert everything.identity(everything.issue(alice)) == alice


def test_a_forged_foreign_or_expired_session_is_nobody():
    sessions = _sessions(seconds=60)
    value = sessions.issue(Identity("alice"))
    assert sessions.identity(value) is not None
    other = Sessions("another secret, long enough", 60, frozenset(), False)
    assert other.identity(value) is None
    assert sessions.identity(value[:-2] + "00") is None
    assert sessions.identity("alice") is None  # a bare name, as an old cookie held
    old = create_signed_value(
        SECRET, SESSION_COOKIE, '{"n":"alice","m":"local","g":[]}', clock=lambda: time.time() - 120
    )
    assert sessions.identity(old.decode()) is None
    # Signed with the right secret but not a session's shape: still nobody.
    odd = create_signed_value(SECRET, SESSION_COOKIE, '{"n":"alice","m":"root"}')
    assert sessions.identity(odd.decode()) is None


def test_many_groups_keep_the_cookie_small():
    sessions = _sessions(named={"g-7"}, all_groups=True)
    crowd = Identity("bob", None, frozenset(f"g-{i}" for i in range(400)), "ldap")
    value = sessions.issue(crowd)
    assert len(value) <= MAX_COOKIE_BYTES
    assert sessions.identity(value) == Identity("bob", None, frozenset({"g-7"}), "ldap")


def test_identity_headers_cannot_carry_a_line_break_or_split_a_list():
    who = Identity("zoë\r\nX-Admin: 1", "z@example.org", frozenset({"a,b", "c"}), "oidc")
    fields = dict(identity_fields(who, "X-User", "X-Email", "X-Groups"))
    assert fields["X-User"] == "zo%C3%AB%0D%0AX-Admin: 1"
    assert fields["X-Email"] == "z@example.org"
    assert fields["X-Groups"] == "a%2Cb,c"
    assert "X-Email" not in dict(identity_fields(Identity("x"), "X-User", "X-Email", "X-G"))


class _Config:
    cookie_secret = SECRET


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"oidc_issuer": "https://id.example"}, "oidc_client_id is not set"),
        (
            {"oidc_issuer": "https://id.example", "oidc_client_id": "proxy"},
            "oidc_client_secret: give it, or oidc_client_secret_file",
        ),
        ({"oidc_issuer": "id.example"}, "expected an http:// or https:// URL"),
        ({"ldap_url": "ldap://dc.example"}, "ldap_user_dn must hold {name}"),
        (
            {"ldap_url": "ldap://dc.example", "ldap_user_dn": "{name}@corp.example"},
            "ldap_user_base is not set",
        ),
        ({"ldap_url": "http://dc.example"}, "expected an ldap://host"),
        ({"identity_user_header": "X User"}, "expected a header field name"),
        ({"oidc_scope": ["openid"]}, "did you mean oidc_scopes"),
    ],
)
def test_sign_in_settings_are_checked_at_start_up(settings, message):
    config = type("Config", (_Config,), settings)()
    with pytest.raises(ConfigError) as caught:
        Options.from_config(config)
    assert message in str(caught.value)


def test_signing_in_needs_a_cookie_secret_whichever_way():
    config = type(
        "Config", (), {"ldap_url": "ldaps://dc.example", "ldap_user_dn": "uid={name},dc=x"}
    )()
    with pytest.raises(ConfigError, match="cookie_secret is not set"):
        Options.from_config(config)
    config.cookie_secret = SECRET
    options = Options.from_config(config)
    assert options.login and options.signin.ldap_url == "ldaps://dc.example"


def test_sites_asking_for_groups_or_identity_need_signing_in():
    from handlers.config.load import check_sites
    from handlers.config.sites import BackendSite, build_site_table

    for keywords in ({"groups": ["staff"]}, {"pass_identity": True}, {"users": ["alice"]}):
        table = build_site_table({"wiki": BackendSite("wiki", "http://127.0.0.1:1", **keywords)})
        with pytest.raises(ConfigError, match="needs signing in on"):
            check_sites(table, Options())
    # With a provider, users are the provider's: any name may be given.
    table = build_site_table({"wiki": BackendSite("wiki", "http://127.0.0.1:1", users=["zed"])})
    check_sites(table, Options.from_config(type("C", (_Config,), _PROVIDER)()))
    with pytest.raises(ConfigError, match=r"not in config\.users"):
        check_sites(table, Options(users={"alice": "$argon2id$x"}, cookie_secret=SECRET))


_PROVIDER = {
    "oidc_issuer": "https://id.example",
    "oidc_client_id": "proxy",
    "oidc_client_secret": "s3cret",
}


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"identity_user_header": "Host"}, "a field the proxy sets or needs itself"),
        ({"identity_groups_header": "X-Forwarded-For"}, "a field the proxy sets or needs"),
        ({"identity_email_header": "X-Scheme"}, "a field the proxy sets or needs"),
        ({"identity_email_header": "x-forwarded-user"}, "must be three different names"),
        ({**_PROVIDER, "oidc_issuer": "http://id.example"}, "expected https"),
        (
            {
                "ldap_url": "ldap://dc.example",
                "ldap_user_dn": "uid={name},dc=x",
                "ldap_starttls": False,
            },
            "passwords would cross the network in clear",
        ),
    ],
)
def test_what_would_leak_or_clash_is_refused_at_start_up(settings, message):
    with pytest.raises(ConfigError) as caught:
        Options.from_config(type("Config", (_Config,), settings)())
    assert message in str(caught.value)


def test_loopback_may_go_without_tls_and_an_issuer_keeps_its_slash():
    local = {
        "oidc_issuer": "http://127.0.0.1:8080/realms/x/",
        "oidc_client_id": "proxy",
        "oidc_client_secret": "s",
        "ldap_url": "ldap://localhost",
        "ldap_user_dn": "uid={name},dc=x",
        "ldap_starttls": False,
    }
    options = Options.from_config(type("Config", (_Config,), local)())
    assert options.signin.oidc_issuer == "http://127.0.0.1:8080/realms/x/"


def test_a_provider_name_must_be_a_verified_address_when_it_is_the_email():
    from handlers.door.oidc import OidcClient, SignInFailed

    options = Options.from_config(
        type("C", (_Config,), {**_PROVIDER, "oidc_user_claim": "email"})()
    )
    client = OidcClient(options.signin)
    claims = {"sub": "1", "email": "boss@example.org", "groups": ["staff", 7]}
    with pytest.raises(SignInFailed):
        client.identity({**claims, "email_verified": False})
    who = client.identity({**claims, "email_verified": True})
    assert who == Identity("boss@example.org", "boss@example.org", frozenset({"staff"}), "oidc")
    named = OidcClient(Options.from_config(type("C", (_Config,), _PROVIDER)()).signin)
    with pytest.raises(SignInFailed):
        named.identity({"sub": "1", "preferred_username": ["not", "a", "name"]})


def test_the_bound_entry_is_recognised_however_its_dn_is_written():
    from handlers.door.directory import _same_dn

    assert _same_dn("uid=bob, ou=People,dc=example, dc=org", "UID=Bob,ou=people,dc=example,dc=org")
    assert _same_dn(r"uid=)(uid\=*,ou=p", r"uid=)(uid\3D*,ou=p")  # two escapes of one "="
    assert _same_dn("cn=a+uid=b,dc=x", "uid=b+cn=a,dc=x")  # an RDN of two values is a set
    assert not _same_dn("cn=a+uid=b,dc=x", "cn=a,uid=b,dc=x")
    assert not _same_dn("uid=alice,ou=people,dc=x", "uid=mallory,ou=people,dc=x")
    assert not _same_dn("uid=alice,dc=x", "not a dn")
