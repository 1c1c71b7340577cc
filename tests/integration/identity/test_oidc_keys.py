"""The provider's keys (JWKS) are fetched once and cached, fetched again when a token
names a key not yet seen (key rotation), and not more than once a minute for that, so
that tokens naming made-up keys cannot make the proxy hammer the provider. The real
provider (tests/support/oidc_provider.py) logs each request it serves: the witness."""

from __future__ import annotations

import base64
import dataclasses
import json
import re

import pytest

from handlers.door.provider import Provider, SignInFailed
from tests.support.oidc_provider import OidcProvider


def _token(kid: str) -> str:
    """A token naming ``kid``: what the key lookup reads (its signature is never checked
    here)."""
    head = base64.urlsafe_b64encode(json.dumps({"alg": "RS256", "kid": kid}).encode())
    return f"{head.decode().rstrip('=')}.e30.c2ln"


@pytest.fixture(scope="module")
def provider(tmp_path_factory):
    with OidcProvider(tmp_path_factory.mktemp("oidc-keys"), clients=[]) as op:
        yield op


def _key_downloads(op: OidcProvider, jwks_path: str) -> int:
    return len(re.findall(rf"GET {re.escape(jwks_path)} 200", op.log()))


def test_keys_are_fetched_once_and_made_up_key_ids_do_not_refetch(loop_thread, provider):
    discovery = provider.discovery()
    jwks_path = "/" + discovery["jwks_uri"].split("/", 3)[3]
    client = Provider(provider.issuer, "nobody", "secret", 5.0)
    before = _key_downloads(provider, jwks_path)

    async def lookups() -> list[str | None]:
        keys = await client.keys(_token("whatever"))
        known = [key.kid for key in keys.keys]
        for _ in range(5):
            await client.keys(_token(known[0] or ""))  # a key it has: no refetch
        for i in range(5):
            await client.keys(_token(f"made-up-{i}"))  # unknown, but fetched just now
        return known

    known = loop_thread.run(lookups())
    assert known and _key_downloads(provider, jwks_path) == before + 1


def test_a_key_set_without_keys_is_a_clear_failure(loop_thread, provider):
    client = Provider(provider.issuer, "nobody", "secret", 5.0)

    async def broken() -> None:
        metadata = await client.metadata()
        # The discovery document is JSON, but no key set: as a misconfigured provider.
        wrong = dataclasses.replace(
            metadata, jwks_uri=f"{provider.issuer}/.well-known/openid-configuration"
        )
        client._metadata = wrong
        await client.keys(_token("k"))

    with pytest.raises(SignInFailed) as failed:
        loop_thread.run(broken())
    assert failed.value.reason.startswith("jwks:")
