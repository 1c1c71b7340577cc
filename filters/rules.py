"""User substitution rules: the seed's ``SubsFilterRules`` and their compiled form."""

from __future__ import annotations

import re
from dataclasses import dataclass, field


class RuleError(ValueError):
    """A substitution rule that cannot be compiled; the message names the bad value."""


@dataclass(frozen=True)
class SubsFilterRules:
    """Replace ``re_src`` by ``str_dst`` in pages whose request URI matches ``re_uri``.

    ``re_uri`` is *searched* in the URI as the client sent it (``"."`` means every page);
    ``re_src`` is a regular expression over the decoded page text and ``str_dst`` a regex
    replacement template, so ``\\1`` and ``\\g<name>`` back-references work.
    Positional order is the original project's: ``SubsFilterRules(re_uri, re_src, str_dst)``.
    """

    re_uri: str
    re_src: str
    str_dst: str
    uri_pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)
    src_pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for attr in ("re_uri", "re_src", "str_dst"):
            value = getattr(self, attr)
            if not isinstance(value, str):
                raise RuleError(f"{attr} must be a string, not {value!r}")
        object.__setattr__(self, "uri_pattern", _compile(self.re_uri, "re_uri"))
        object.__setattr__(self, "src_pattern", _compile(self.re_src, "re_src"))
        if not self.re_src:
            raise RuleError("re_src must not be empty: it would match between every character")
        _check_template(self.src_pattern, self.str_dst)

    def applies_to(self, uri: str) -> bool:
        return self.uri_pattern.search(uri) is not None


def _compile(pattern: str, what: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise RuleError(f"invalid regular expression in {what}: {pattern!r} ({exc})") from None


def _check_template(pattern: re.Pattern[str], template: str) -> None:
    """Reject a replacement with a bad escape or group reference at start-up, not on
    the first page it meets. ``re`` only parses a template when it expands it, so
    parse it here with the parser ``re`` itself uses."""
    parse = getattr(getattr(re, "_parser", None), "parse_template", None)
    if parse is None:  # pragma: no cover - a Python without the private parser
        return
    try:
        parse(template, pattern)
    except (re.error, IndexError) as exc:
        raise RuleError(
            f"invalid replacement {template!r} for {pattern.pattern!r} ({exc})"
        ) from None
