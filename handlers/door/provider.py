"""Talking to an OpenID Connect provider over HTTP: its metadata (discovery), its keys
(JWKS) and its token endpoint, with Tornado's own HTTP client so that the IOLoop never
waits. handlers/door/oidc.py runs the sign-in with it.

The metadata is read once; the keys are cached and fetched again after KEYS_SECONDS, or
at once when a token names a key not yet seen (which is how providers roll their keys),
but not more than once every KEYS_REFETCH_SECONDS, so that tokens naming made-up keys
cannot make the proxy hammer the provider.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.simple_httpclient import SimpleAsyncHTTPClient

KEYS_SECONDS = 3600  # the provider's keys are fetched again after this
KEYS_REFETCH_SECONDS = 60  # and, for an unknown key id, at most this often


class SignInFailed(Exception):
    """A sign-in at the provider that did not succeed. ``reason`` goes to the audit
    trail; the message is safe to show the user."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Metadata:
    """What discovery says of the provider."""

    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    end_session_endpoint: str | None


class Provider:
    """One provider, as this proxy (``client_id``, ``secret``) calls it."""

    def __init__(self, issuer: str, client_id: str, secret: str, timeout: float) -> None:
        self.issuer = issuer
        self.client_id = client_id
        self.secret = secret
        self.timeout = timeout
        self._metadata: Metadata | None = None
        self._keys: KeySet | None = None
        self._keys_at = 0.0
        self._http: SimpleAsyncHTTPClient | None = None  # made on the IOLoop, at first use

    async def metadata(self) -> Metadata:
        if self._metadata is None:
            base = self.issuer.rstrip("/")
            document = await self._get_json(f"{base}/.well-known/openid-configuration")
            if document.get("issuer") != self.issuer:
                raise SignInFailed(
                    "The sign-in provider is misconfigured.", "discovery: issuer differs"
                )
            try:
                self._metadata = Metadata(
                    str(document["authorization_endpoint"]),
                    str(document["token_endpoint"]),
                    str(document["jwks_uri"]),
                    document.get("end_session_endpoint"),
                )
            except KeyError as exc:
                raise SignInFailed(
                    "The sign-in provider is misconfigured.", f"discovery: no {exc}"
                ) from None
        return self._metadata

    async def keys(self, token: str) -> KeySet:
        """The keys to check ``token`` with: the cached ones, fetched again when stale,
        or when the token names a key they lack (once a minute at most)."""
        key_id = self._key_id(token)
        age = time.monotonic() - self._keys_at
        unknown = (
            self._keys is not None
            and key_id is not None
            and not any(key.kid == key_id for key in self._keys.keys)
        )
        if self._keys is None or age > KEYS_SECONDS or (unknown and age > KEYS_REFETCH_SECONDS):
            metadata = await self.metadata()
            document: Any = await self._get_json(metadata.jwks_uri)
            try:
                self._keys = KeySet.import_key_set(document)
            except (JoseError, KeyError, TypeError, ValueError) as exc:
                raise SignInFailed(
                    "The sign-in provider is misconfigured.", f"jwks: {exc.__class__.__name__}"
                ) from None
            self._keys_at = time.monotonic()
        return self._keys

    @staticmethod
    def _key_id(token: str) -> str | None:
        try:
            head = token.split(".", 1)[0]
            header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
            kid = header.get("kid")
            return kid if isinstance(kid, str) else None
        except (ValueError, AttributeError):
            return None

    async def token(self, form: dict[str, str]) -> dict[str, Any]:
        """The token endpoint's answer to ``form``, the client authenticated with HTTP
        Basic (client_secret_basic)."""
        metadata = await self.metadata()
        return await self._post_json(metadata.token_endpoint, form)

    async def _get_json(self, url: str) -> dict[str, Any]:
        return await self._fetch(HTTPRequest(url, request_timeout=self.timeout,
                                             connect_timeout=self.timeout))  # fmt: skip

    async def _post_json(self, url: str, form: dict[str, str]) -> dict[str, Any]:
        user = urllib.parse.quote(self.client_id, safe="")
        password = urllib.parse.quote(self.secret, safe="")
        basic = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        request = HTTPRequest(
            url,
            method="POST",
            body=urllib.parse.urlencode(form),
            headers={
                "Authorization": f"Basic {basic}",
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
            },
            request_timeout=self.timeout,
            connect_timeout=self.timeout,
        )
        return await self._fetch(request)

    async def _fetch(self, request: HTTPRequest) -> dict[str, Any]:
        where = urllib.parse.urlsplit(request.url)._replace(query="").geturl()
        if self._http is None:
            self._http = SimpleAsyncHTTPClient(force_instance=True)
        try:
            response = await self._http.fetch(request)
            document = json.loads(response.body)
        except HTTPClientError as exc:
            if exc.code == 599:  # no answer: a timeout or a connection that failed
                raise SignInFailed(
                    "The sign-in provider cannot be reached: try again later.",
                    f"provider {where}: {exc.message}",
                ) from None
            detail = ""
            if exc.response is not None and exc.response.body:
                try:
                    detail = str(json.loads(exc.response.body).get("error", ""))
                except (ValueError, AttributeError):
                    detail = ""
            raise SignInFailed(
                "The sign-in provider refused the sign-in: try again.",
                f"provider {where}: HTTP {exc.code} {detail}".strip(),
            ) from None
        except (OSError, ValueError) as exc:
            raise SignInFailed(
                "The sign-in provider cannot be reached: try again later.",
                f"provider {where}: {exc.__class__.__name__}",
            ) from None
        if not isinstance(document, dict):
            raise SignInFailed("The sign-in provider answered nonsense.", f"provider {where}")
        return document


__all__ = ["KEYS_REFETCH_SECONDS", "KEYS_SECONDS", "Metadata", "Provider", "SignInFailed"]
