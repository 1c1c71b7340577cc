"""The in-page shim is JavaScript and cannot import filters/names.py: it spells the
reserved names again. These checks fail when the two drift apart."""

from __future__ import annotations

import re
from pathlib import Path

from filters.names import FALLBACK_PREFIX, PROXY_PAGES, SITE_COOKIE, SITE_MARK, SITE_PREFIX

SHIM = (Path(__file__).resolve().parents[2] / "handlers" / "assets" / "shim.js").read_text()


def test_the_prefix_is_the_proxys() -> None:
    assert f'var PREFIX = "{SITE_PREFIX}";' in SHIM


def test_the_proxys_pages_are_its_own() -> None:
    pages = PROXY_PAGES.rstrip("/")
    assert f'path === "{pages}"' in SHIM
    assert f'path.lastIndexOf("{PROXY_PAGES}", 0) === 0' in SHIM


def test_root_links_in_markup_skip_what_the_proxy_made() -> None:
    pattern = re.search(r"var IN_HTML = /(.*)/gi;", SHIM)
    assert pattern is not None
    assert re.escape(SITE_MARK) in pattern.group(1)
    assert re.escape(PROXY_PAGES.lstrip("/")).replace("/", r"\/") in pattern.group(1)


def test_cookie_names_are_the_proxys() -> None:
    assert f'var MINE = "{FALLBACK_PREFIX}" + SITE + "~";' in SHIM
    assert f'n !== "{SITE_COOKIE}" && n.lastIndexOf("{FALLBACK_PREFIX}", 0) !== 0' in SHIM
    assert f'pair.lastIndexOf("{SITE_COOKIE}", 0) !== 0' in SHIM
