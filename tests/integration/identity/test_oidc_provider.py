"""The real OpenID Connect provider the single sign-on tests sign in at
(tests/support/oidc_provider.py), checked on its own: if it did not enforce PKCE, or
put stale groups in its ID tokens, or kept a session after sign-out, the proxy's tests
against it would prove less than they say."""

from __future__ import annotations

import base64
import hashlib
import http.cookiejar
import json
import secrets
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.oidc_provider import (
    OidcProvider,
    ProviderError,
    WrongPassword,
    sign_in,
    sign_out,
    visit,
)

# Never fetched: the driver stops at the redirect to them.
REDIRECT_URI = "http://127.0.0.1:9/.proxy/oidc/callback"
LOGGED_OUT_URI = "http://127.0.0.1:9/.proxy/signed-out"
CLIENT_ID, CLIENT_SECRET = "web-proxy", "rp-secret-1"


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProvider]:
    accounts = {
        "alice": {
            "password": "alice-pw",
            "email": "alice@example.org",
            "name": "Alice",
            "groups": ["staff", "wiki-editors"],
        },
    }
    registration = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "redirect_uris": [REDIRECT_URI],
        "post_logout_redirect_uris": [LOGGED_OUT_URI],
    }
    with OidcProvider(tmp_path_factory.mktemp("oidc"), [registration], accounts) as op:
        yield op


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Authorization:
    """One authorization request: its PKCE verifier, state and nonce, and its URL."""

    def __init__(self, provider: OidcProvider) -> None:
        self.verifier = b64url(secrets.token_bytes(32))
        self.state = secrets.token_urlsafe(8)
        self.nonce = secrets.token_urlsafe(8)
        query = {
            "response_type": "code",
            "client_id": CLIENT_ID,
            "redirect_uri": REDIRECT_URI,
            "scope": "openid email profile groups",
            "state": self.state,
            "nonce": self.nonce,
            "code_challenge": b64url(hashlib.sha256(self.verifier.encode()).digest()),
            "code_challenge_method": "S256",
        }
        self.url = f"{provider.issuer}/auth?{urllib.parse.urlencode(query)}"

    def code(self, location: str) -> str:
        assert location.startswith(REDIRECT_URI + "?"), location
        params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
        assert params["state"] == self.state
        return params["code"]


def token_request(provider: OidcProvider, fields: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """POST to the token endpoint with client_secret_basic; (status, JSON answer)."""
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    request = urllib.request.Request(
        f"{provider.issuer}/token",
        data=urllib.parse.urlencode(fields).encode(),
        headers={"Authorization": f"Basic {basic}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.load(error)


def id_token_claims(provider: OidcProvider, auth: Authorization, location: str) -> dict[str, Any]:
    status, answer = token_request(
        provider,
        {
            "grant_type": "authorization_code",
            "code": auth.code(location),
            "redirect_uri": REDIRECT_URI,
            "code_verifier": auth.verifier,
        },
    )
    assert status == 200, answer
    payload = answer["id_token"].split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_discovery_names_the_endpoints_and_s256(provider: OidcProvider) -> None:
    document = provider.discovery()
    assert document["issuer"] == provider.issuer
    for endpoint in (
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "end_session_endpoint",
    ):
        assert document[endpoint].startswith(provider.issuer + "/")
    assert "S256" in document["code_challenge_methods_supported"]
    assert {"openid", "email", "profile", "groups"} <= set(document["scopes_supported"])


def test_code_flow_with_pkce_gives_an_id_token_with_the_users_claims(
    provider: OidcProvider,
) -> None:
    auth = Authorization(provider)
    claims = id_token_claims(provider, auth, sign_in(auth.url, "alice", "alice-pw"))
    assert claims["iss"] == provider.issuer
    assert claims["aud"] == CLIENT_ID
    assert claims["nonce"] == auth.nonce
    assert claims["sub"] == claims["preferred_username"] == "alice"
    assert (claims["email"], claims["email_verified"]) == ("alice@example.org", True)
    assert claims["name"] == "Alice"
    assert claims["groups"] == ["staff", "wiki-editors"]
    assert claims["exp"] - claims["iat"] == 3600  # OidcProvider's id_token_ttl


def test_a_wrong_password_is_refused(provider: OidcProvider) -> None:
    auth = Authorization(provider)
    with pytest.raises(WrongPassword):
        sign_in(auth.url, "alice", "not-her-password")
    with pytest.raises(WrongPassword):
        sign_in(auth.url, "nobody", "alice-pw")
    assert "POST /interaction/" in provider.log() and " 401\n" in provider.log()


def test_pkce_is_required_and_checked(provider: OidcProvider) -> None:
    auth = Authorization(provider)
    without = urllib.parse.urlsplit(auth.url)
    query = [(k, v) for k, v in urllib.parse.parse_qsl(without.query) if not k.startswith("code_")]
    refused = sign_in(without._replace(query=urllib.parse.urlencode(query)).geturl(), "alice", "x")
    assert refused.startswith(REDIRECT_URI + "?")
    assert "error=invalid_request" in refused and "PKCE" in urllib.parse.unquote_plus(refused)
    code = auth.code(sign_in(auth.url, "alice", "alice-pw"))
    fields = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}
    status, answer = token_request(provider, fields)
    assert (status, answer["error"]) == (400, "invalid_grant")
    status, answer = token_request(provider, {**fields, "code_verifier": "x" * 43})
    assert (status, answer["error"]) == (400, "invalid_grant")


def test_new_groups_show_in_the_next_id_token(provider: OidcProvider) -> None:
    provider.set_account("bob", "bob-pw", email="bob@example.org", groups=["staff"])
    auth = Authorization(provider)
    assert id_token_claims(provider, auth, sign_in(auth.url, "bob", "bob-pw"))["groups"] == [
        "staff"
    ]
    provider.set_account("bob", "bob-pw", email="bob@example.org", groups=["admins"])
    auth = Authorization(provider)
    assert id_token_claims(provider, auth, sign_in(auth.url, "bob", "bob-pw"))["groups"] == [
        "admins"
    ]


def test_signed_in_the_next_authorization_is_silent(provider: OidcProvider) -> None:
    jar = http.cookiejar.CookieJar()
    first = Authorization(provider)
    sign_in(first.url, "alice", "alice-pw", jar)
    second = Authorization(provider)
    landing = visit(second.url, jar)
    assert not landing.shows_login_form
    assert landing.location is not None
    assert id_token_claims(provider, second, landing.location)["sub"] == "alice"
    # Without the provider's cookies, the same request asks for a login.
    assert visit(Authorization(provider).url, http.cookiejar.CookieJar()).shows_login_form


def test_after_sign_out_the_login_form_is_back(provider: OidcProvider) -> None:
    jar = http.cookiejar.CookieJar()
    sign_in(Authorization(provider).url, "alice", "alice-pw", jar)
    end_session = provider.discovery()["end_session_endpoint"]
    query = {"client_id": CLIENT_ID, "post_logout_redirect_uri": LOGGED_OUT_URI, "state": "s1"}
    landing = visit(f"{end_session}?{urllib.parse.urlencode(query)}", jar)
    assert any("logout-confirm" in form.ids for form in landing.forms())
    assert (
        sign_out(f"{end_session}?{urllib.parse.urlencode(query)}", jar)
        == LOGGED_OUT_URI + "?state=s1"
    )
    assert visit(Authorization(provider).url, jar).shows_login_form


def test_only_a_registered_post_logout_uri_is_followed(provider: OidcProvider) -> None:
    jar = http.cookiejar.CookieJar()
    sign_in(Authorization(provider).url, "alice", "alice-pw", jar)
    end_session = provider.discovery()["end_session_endpoint"]
    query = {"client_id": CLIENT_ID, "post_logout_redirect_uri": "http://127.0.0.1:9/elsewhere"}
    with pytest.raises(ProviderError):
        sign_out(f"{end_session}?{urllib.parse.urlencode(query)}", jar)
    assert visit(Authorization(provider).url, jar).location is not None  # still signed in


def test_a_removed_account_must_sign_in_again_and_cannot(provider: OidcProvider) -> None:
    provider.set_account("carol", "carol-pw", groups=["staff"])
    jar = http.cookiejar.CookieJar()
    sign_in(Authorization(provider).url, "carol", "carol-pw", jar)
    provider.remove_account("carol")
    assert visit(Authorization(provider).url, jar).shows_login_form
    with pytest.raises(WrongPassword):
        sign_in(Authorization(provider).url, "carol", "carol-pw", jar)
