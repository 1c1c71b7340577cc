"""What single sign-on must refuse in an ID token: one the provider did not make for this
proxy and this sign-in (another key, no signature or the client secret's, expired past
the leeway or issued in the future, another audience, issuer or nonce, a claim
missing) gets a 401 and no session, and asks nothing of a backend; a good token, and
one expired within the leeway, are the controls that sign in.

The real provider (tests/support/oidc_provider.py) signs with a key the tests made, so
that tokens with bad claims can be signed with the provider's own key. They reach the
proxy through a stand-in issuer whose token endpoint hands out such a token: its
discovery document names the real provider's published keys (JWKS), which the proxy
fetches over HTTP as it would from any provider. The provider, the stand-in and the
proxies are conftest.py's security_world, shared with test_oidc_security.py."""

from __future__ import annotations

import base64
import json
import time
import urllib.parse
import warnings
from typing import Any

import pytest
from joserfc import jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import OctKey

from tests.support.identity import CLIENT_ID, CLIENT_SECRET, Browser, refused, rsa_key, started
from tests.support.identity import SecurityWorld as World

LEEWAY = 60  # the proxy's oidc_leeway (its default)


@pytest.fixture(scope="module")
def world(security_world: World) -> World:
    """The provider, the stand-in issuer and the proxies signing in at each (conftest.py)."""
    return security_world


def unsigned(claims: dict[str, Any]) -> str:
    """A token with ``"alg": "none"``: no signature at all."""

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def mint(world: World, nonce: str, case: str) -> str:
    """The ID token of ``case``: the provider's key and good claims unless the case
    says otherwise."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": world.stand_in.url,
        "sub": "mallory",
        "aud": CLIENT_ID,
        "exp": now + 300,
        "iat": now,
        "nonce": nonce,
        "preferred_username": "mallory",
        "groups": ["staff"],
    }
    header = {"alg": "RS256", "kid": "k1"}
    key: Any = world.key
    if case == "another key, same kid":
        key = rsa_key("k1")
    elif case == "another key of its own kid":
        key, header["kid"] = rsa_key("k2"), "k2"
    elif case == "HS256 with the client secret":  # a secret the proxy knows too
        with warnings.catch_warnings(action="ignore", category=SecurityWarning):  # it is short
            key, header = OctKey.import_key(CLIENT_SECRET), {"alg": "HS256"}
    elif case == "no signature":
        return unsigned(claims)
    elif case == "expired within the leeway":
        claims.update(exp=now - LEEWAY // 2, iat=now - 600)
    elif case == "expired beyond the leeway":
        claims.update(exp=now - 2 * LEEWAY, iat=now - 600)
    elif case == "issued in the future":
        claims.update(iat=now + 2 * LEEWAY)
    elif case == "another audience":
        claims["aud"] = "another-client"
    elif case == "shared audience, another azp":
        claims.update(aud=[CLIENT_ID, "another-client"], azp="another-client")
    elif case == "the real provider's issuer":
        claims["iss"] = world.provider.issuer
    elif case == "another nonce":
        claims["nonce"] = "not-this-sign-in"
    elif case == "no nonce":
        del claims["nonce"]
    elif case == "no expiry":
        del claims["exp"]
    else:
        assert case == "good", case
    return jwt.encode(header, claims, key, algorithms=["RS256", "HS256"])


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("good", None),
        ("expired within the leeway", None),
        ("another key, same kid", "id_token: bad_signature"),
        ("another key of its own kid", "id_token: invalid_key_id"),
        ("HS256 with the client secret", "id_token: unsupported_algorithm"),
        ("no signature", "id_token: unsupported_algorithm"),
        ("expired beyond the leeway", "id_token: expired_token"),
        ("issued in the future", "id_token: invalid_claim"),
        ("another audience", "id_token: invalid_claim"),
        ("shared audience, another azp", "id_token: azp"),
        ("the real provider's issuer", "id_token: invalid_claim"),
        ("another nonce", "id_token: invalid_claim"),
        ("no nonce", "id_token: missing_claim"),
        ("no expiry", "id_token: missing_claim"),
    ],
)
def test_id_tokens_not_made_for_this_sign_in_make_no_session(
    world: World, case: str, reason: str | None
) -> None:
    """Signed by another key, or by none, or with the client secret; expired past the
    leeway, issued in the future, for another client or issuer, for another sign-in
    (nonce): 401 and no session. The good token and one expired within the leeway are
    the controls: the same way in signs mallory in."""
    browser = Browser(world.forging_port)
    _, query = started(browser)
    code = f"code-{case}"
    world.stand_in.tokens[code] = mint(world, query["nonce"], case)
    answer = {"code": code, "state": query["state"]}
    reply = browser.open(f"/.proxy/oidc/callback?{urllib.parse.urlencode(answer)}")
    assert world.stand_in.asked[-1]["code"] == code  # the token endpoint was asked
    if reason is not None:
        refused(world, browser, reply, 401, reason)
        return
    before = world.upstream
    assert (reply.status, reply.location) == (302, "/.site.wiki/")
    assert browser.navigate("/.site.wiki/").status == 200
    assert world.upstream == before + 1
    assert world.backend.seen[-1].header("X-Forwarded-User") == "mallory"
