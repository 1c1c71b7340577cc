"""Signing in at an OpenID Connect provider: the authorization code flow with PKCE.

The provider's own page takes the password; the proxy never sees it. What the proxy
does (OpenID Connect Core 1.0, section 3.1):
1. ``begin()``: a fresh ``state`` (binds the answer to this browser), ``nonce`` (binds
   the ID token to this request) and PKCE verifier (RFC 7636: a stolen code is useless
   without it), kept in a signed cookie for ten minutes; the browser is sent to the
   provider's authorization endpoint.
2. ``finish()``: the code the provider sends back is exchanged at the token endpoint
   with the verifier and the client's secret; the ID token's signature is checked
   against the provider's published keys (JWKS) and its claims — issuer, audience,
   expiry and issue time with ``oidc_leeway`` of clock difference, nonce — before the
   user's name, e-mail address and groups are read from it.

JOSE (signatures, keys, claims) is joserfc's and PKCE and the random values are
Authlib's: no cryptography is written here. The provider is called without blocking
the IOLoop (handlers/door/provider.py, which also caches its metadata and keys).
"""

from __future__ import annotations

import hmac
import json
import logging
import time
import urllib.parse
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import JoseError

from handlers.config.signin import SignInOptions
from handlers.door.identity import Identity
from handlers.door.provider import Provider, SignInFailed

log = logging.getLogger(__name__)

FLOW_SECONDS = 600  # a sign-in at the provider must come back within this
# Signature algorithms accepted for ID tokens: asymmetric only (an HMAC "signed" with
# the client secret is not evidence the provider made the token).
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA")
_SEEN_STATES = 10_000  # states already used, remembered per process to refuse a replay


@dataclass(frozen=True, slots=True)
class Flow:
    """One sign-in in progress, as kept in the flow cookie."""

    state: str
    nonce: str
    verifier: str
    next_path: str
    started: float

    def dump(self) -> str:
        return json.dumps(
            [self.state, self.nonce, self.verifier, self.next_path, self.started],
            separators=(",", ":"),
        )

    @classmethod
    def load(cls, text: bytes | str) -> Flow | None:
        try:
            state, nonce, verifier, next_path, started = json.loads(text)
            return cls(str(state), str(nonce), str(verifier), str(next_path), float(started))
        except (ValueError, TypeError):
            return None


class OidcClient:
    """This proxy as a relying party of one provider."""

    def __init__(self, signin: SignInOptions) -> None:
        assert signin.oidc_issuer is not None and signin.oidc_client_id is not None
        self.issuer = signin.oidc_issuer
        self.client_id = signin.oidc_client_id
        secret = signin.client_secret()
        self.scopes = " ".join(sorted({"openid", *signin.oidc_scopes}))
        self.user_claim = signin.oidc_user_claim
        self.groups_claim = signin.oidc_groups_claim
        self.email_domains = frozenset(d.lower().lstrip("@") for d in signin.oidc_email_domains)
        self.redirect_url = signin.oidc_redirect_url
        self.leeway = signin.oidc_leeway
        self.provider = Provider(self.issuer, self.client_id, secret, signin.oidc_timeout)
        self._seen: OrderedDict[str, None] = OrderedDict()

    # --- 1. off to the provider ---------------------------------------------------------

    async def begin(self, next_path: str, redirect_uri: str) -> tuple[str, Flow]:
        """The provider's authorization URL and the flow to keep until it answers."""
        metadata = await self.provider.metadata()
        flow = Flow(generate_token(32), generate_token(32), generate_token(64), next_path,
                    time.time())  # fmt: skip
        query = urllib.parse.urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": redirect_uri,
                "scope": self.scopes,
                "state": flow.state,
                "nonce": flow.nonce,
                "code_challenge": create_s256_code_challenge(flow.verifier),
                "code_challenge_method": "S256",
            }
        )
        separator = "&" if "?" in metadata.authorization_endpoint else "?"
        return f"{metadata.authorization_endpoint}{separator}{query}", flow

    # --- 2. back with a code --------------------------------------------------------------

    async def finish(self, flow: Flow, state: str, code: str, redirect_uri: str) -> Identity:
        """The identity the provider vouches for; SignInFailed otherwise."""
        if not hmac.compare_digest(flow.state, state):
            raise SignInFailed("This sign-in was not started here.", "state mismatch")
        if time.time() - flow.started > FLOW_SECONDS:
            raise SignInFailed("The sign-in took too long: try again.", "flow expired")
        if state in self._seen:
            raise SignInFailed("This sign-in was already used.", "state replayed")
        self._seen[state] = None
        while len(self._seen) > _SEEN_STATES:
            self._seen.popitem(last=False)
        tokens = await self.provider.token(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": flow.verifier,
            },
        )
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise SignInFailed("The provider sent no ID token.", "no id_token")
        claims = await self.verify(id_token, flow.nonce)
        return self.identity(claims)

    async def verify(self, id_token: str, nonce: str) -> dict[str, Any]:
        """The ID token's claims, once its signature and claims are checked."""
        try:
            keys = await self.provider.keys(id_token)
            token = jwt.decode(id_token, keys, algorithms=list(ALGORITHMS))
            jwt.JWTClaimsRegistry(
                leeway=self.leeway,
                iss={"essential": True, "value": self.issuer},
                aud={"essential": True, "value": self.client_id},
                exp={"essential": True},
                iat={"essential": True},
                nonce={"essential": True, "value": nonce},
                sub={"essential": True},
            ).validate(token.claims)
        except JoseError as exc:
            raise SignInFailed(
                "The provider's answer could not be verified.", f"id_token: {exc.error}"
            ) from None
        claims = token.claims
        audience, azp = claims.get("aud"), claims.get("azp")
        several = isinstance(audience, list) and len(audience) > 1
        if (several or azp is not None) and azp != self.client_id:
            raise SignInFailed("The provider's answer was not for this proxy.", "id_token: azp")
        return claims

    def identity(self, claims: dict[str, Any]) -> Identity:
        """Name, e-mail and groups from verified claims."""
        name = claims.get(self.user_claim) or claims["sub"]
        if not isinstance(name, str) or not name:
            raise SignInFailed("The provider did not name you.", f"claim {self.user_claim}")
        if self.user_claim == "email" and claims.get("email_verified") is not True:
            # An address users can set themselves is no name to grant access by.
            raise SignInFailed("Your e-mail address is not verified.", "e-mail not verified")
        email = claims.get("email")
        email = email if isinstance(email, str) and email else None
        if self.email_domains:
            domain = email.rpartition("@")[2].lower() if email else ""
            if domain not in self.email_domains or claims.get("email_verified") is not True:
                raise SignInFailed(
                    "Your e-mail address is not one this proxy accepts.", "e-mail domain"
                )
        raw = claims.get(self.groups_claim) or ()
        groups = (
            frozenset(g for g in raw if isinstance(g, str))
            if isinstance(raw, list)
            else frozenset()
        )
        return Identity(name, email, groups, "oidc")

    async def end_session_url(self, post_logout_redirect_uri: str) -> str | None:
        """Where to send the browser to end the provider's session too (None: the
        provider offers no RP-initiated logout, or cannot be asked now)."""
        try:
            metadata = await self.provider.metadata()
        except SignInFailed as exc:
            log.warning("signing out at the provider is not possible: %s", exc.reason)
            return None
        if metadata.end_session_endpoint is None:
            return None
        query = urllib.parse.urlencode(
            {"client_id": self.client_id, "post_logout_redirect_uri": post_logout_redirect_uri}
        )
        separator = "&" if "?" in metadata.end_session_endpoint else "?"
        return f"{metadata.end_session_endpoint}{separator}{query}"


__all__ = ["ALGORITHMS", "FLOW_SECONDS", "Flow", "OidcClient", "SignInFailed"]
