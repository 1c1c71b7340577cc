"""Letting the shim's one script through a backend's Content-Security-Policy, and nothing
else: the policy is amended only in the directive that governs script elements, only
with a source that admits the shim.

Pure; tests in tests/integration/test_shim.py.
"""

from __future__ import annotations

from typing import NamedTuple

# The directive that decides whether a <script src> may load, most specific first
# (CSP Level 3, section 6.1.3 and its fallback lists).
_SCRIPT_DIRECTIVES = ("script-src-elem", "script-src", "default-src")
_HASH_OR_NONCE = ("'nonce-", "'sha256-", "'sha384-", "'sha512-")


class Amended(NamedTuple):
    policy: str  # the header value to send
    allows_shim: bool  # False: this policy allows no script at all; leave the page alone
    uses_nonce: bool  # the amended policy names the nonce: the shim's tag must carry it


def admit_shim(policy: str, nonce: str, shim_source: str) -> Amended:
    """Amend one Content-Security-Policy header value (which may hold several policies,
    comma-separated) so that the shim's script may run.

    ``shim_source`` is the shim's URL as a CSP source expression (``host/.proxy/shim.js``):
    where a directive allows inline scripts by ``'unsafe-inline'`` alone, adding a nonce
    would switch that off for the page's own inline scripts, so the shim's exact URL is
    added instead. Everywhere else a nonce is added, which is what ``'strict-dynamic'``
    requires and what admits exactly one element."""
    policies = []
    allows, uses_nonce = True, False
    for one in policy.split(","):
        text, ok, nonce_used = _admit_one(one, nonce, shim_source)
        policies.append(text)
        allows = allows and ok
        uses_nonce = uses_nonce or nonce_used
    return Amended(",".join(policies), allows, uses_nonce)


def _admit_one(policy: str, nonce: str, shim_source: str) -> tuple[str, bool, bool]:
    directives = policy.split(";")
    names = [d.split(None, 1)[0].lower() if d.strip() else "" for d in directives]
    for wanted in _SCRIPT_DIRECTIVES:
        if wanted in names:
            index = names.index(wanted)
            break
    else:
        return policy, True, False  # nothing restricts scripts
    words = directives[index].split()
    sources = [w.lower() for w in words[1:]]
    if not sources or sources == ["'none'"]:
        return policy, False, False
    strict = "'strict-dynamic'" in sources
    if not strict and ("'self'" in sources or "*" in sources):
        return policy, True, False  # the shim is a same-origin script: already allowed
    keyed = any(s.startswith(_HASH_OR_NONCE) for s in sources)
    if strict or keyed or "'unsafe-inline'" not in sources:
        words.append(f"'nonce-{nonce}'")
        used = True
    else:
        words.append(shim_source)
        used = False
    lead = directives[index][: len(directives[index]) - len(directives[index].lstrip())]
    directives[index] = lead + " ".join(words)
    return ";".join(directives), True, used


__all__ = ["Amended", "admit_shim"]
