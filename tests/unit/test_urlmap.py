"""The one URL mapping, both ways: pure, no sockets."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handlers.config.sites import BackendSite, build_site_table
from handlers.mapping.urlmap import if_to_backend, origin_to_backend, to_backend, to_proxy

TABLE = build_site_table(
    {
        "a": BackendSite("a", "http://10.1.2.3"),
        "dav": BackendSite("dav", "https://files.corp:8443"),
        "b.x": BackendSite("b.x", "http://127.0.0.1:8080"),
    }
)
A, DAV = TABLE.get("a"), TABLE.get("dav")
PROXY = "proxy.example:9000"

# Paths as backends write them: escapes in either case, queries, dots, non-ASCII escapes.
paths = st.from_regex(
    r"/(?:[a-z0-9._~-]|%[0-9a-fA-F]{2}|/){0,20}(?:\?[a-z0-9=&%/-]{0,10})?", fullmatch=True
).filter(lambda p: not p.startswith("//"))  # "//x" is scheme-relative, not a path


@given(st.sampled_from(list(TABLE)), paths)
def test_to_backend_is_the_inverse_of_to_proxy(site, path):
    """For every URL the proxy hands out, mapping it back gives the backend URL it came
    from: in the root-relative form the proxy writes, and in the absolute form clients
    send (Destination, Referer), with the proxy's scheme either way."""
    backend_url = site.base_url + path
    handed_out = to_proxy(backend_url, TABLE, A)
    assert handed_out == f"/.site.{site.name}{path}"
    assert to_backend(handed_out, TABLE, A, PROXY) == backend_url
    for scheme in ("http", "https"):
        assert to_backend(f"{scheme}://{PROXY}{handed_out}", TABLE, A, PROXY) == backend_url


@given(paths)
def test_root_relative_urls_of_the_current_site_round_trip(path):
    handed_out = to_proxy(path, TABLE, DAV)
    assert handed_out == f"/.site.dav{path}"
    assert to_backend(handed_out, TABLE, DAV, PROXY) == DAV.base_url + path


@pytest.mark.parametrize(
    "url, expected",
    [
        # The other scheme, and spelled-out default ports, are the same backend.
        ("https://10.1.2.3/x", "/.site.a/x"),
        ("http://10.1.2.3:80/x", "/.site.a/x"),
        ("http://files.corp:8443/x", "/.site.dav/x"),
        ("//127.0.0.1:8080/x", "/.site.b.x/x"),
        ("HTTP://10.1.2.3/X", "/.site.a/X"),
    ],
)
def test_to_proxy_spellings(url, expected):
    assert to_proxy(url, TABLE, A) == expected


@pytest.mark.parametrize(
    "url, current, expected",
    [
        # Unprefixed URLs of the proxy (a page reached through the cookie) are the
        # current site's.
        (f"http://{PROXY}/page?x=1", "a", "http://10.1.2.3/page?x=1"),
        (f"http://{PROXY}", "a", "http://10.1.2.3/"),
        # Another configured site's URL maps to that site's backend.
        (f"http://{PROXY}/.site.dav/f", "a", "https://files.corp:8443/f"),
        # A root-relative path without the prefix is the backend's own already.
        ("/x/y", "a", "/x/y"),
        # Left alone: other hosts, the proxy's own pages, unknown sites, other schemes.
        ("http://elsewhere.example/.site.a/x", "a", "http://elsewhere.example/.site.a/x"),
        (f"http://{PROXY}/.proxy/", "a", f"http://{PROXY}/.proxy/"),
        (f"http://{PROXY}/.site.zz/x", "a", f"http://{PROXY}/.site.zz/x"),
        ("/.site.zz/x", "a", "/.site.zz/x"),
        (f"ftp://{PROXY}/.site.a/x", "a", f"ftp://{PROXY}/.site.a/x"),
        ("urn:uuid:4e1d-x", "a", "urn:uuid:4e1d-x"),
        ("opaquelocktoken:1234", "a", "opaquelocktoken:1234"),
        # The host is compared without regard to case; the path byte for byte.
        ("http://PROXY.example:9000/.site.a/%2e%2E/", "a", "http://10.1.2.3/%2e%2E/"),
    ],
)
def test_to_backend(url, current, expected):
    assert to_backend(url, TABLE, TABLE.get(current), PROXY) == expected


def test_to_backend_without_a_host_maps_only_prefixed_paths():
    assert to_backend(f"http://{PROXY}/.site.a/x", TABLE, A, None) == f"http://{PROXY}/.site.a/x"
    assert to_backend("/.site.a/x", TABLE, A, None) == "http://10.1.2.3/x"


@pytest.mark.parametrize(
    "origin, expected",
    [
        (f"http://{PROXY}", "http://10.1.2.3"),
        (f"https://{PROXY}", "http://10.1.2.3"),
        # A foreign page's Origin stays, so that the backend's cross-site checks work.
        ("http://evil.example", "http://evil.example"),
        ("null", "null"),
        (f"http://{PROXY}.evil.example", f"http://{PROXY}.evil.example"),
    ],
)
def test_origin_to_backend(origin, expected):
    assert origin_to_backend(origin, A, PROXY) == expected


def test_if_header_resource_tags_map_state_tokens_stay():
    value = (
        f'<http://{PROXY}/.site.dav/doc.txt> (["etag-1"] <opaquelocktoken:abc>) '
        f'(Not <urn:uuid:x>) <http://{PROXY}/.site.dav/other/> ([W/"2"])'
    )
    assert if_to_backend(value, TABLE, DAV, PROXY) == (
        '<https://files.corp:8443/doc.txt> (["etag-1"] <opaquelocktoken:abc>) '
        '(Not <urn:uuid:x>) <https://files.corp:8443/other/> ([W/"2"])'
    )
    # An untagged list has no URL to map.
    assert if_to_backend("(<opaquelocktoken:abc>)", TABLE, DAV, PROXY) == "(<opaquelocktoken:abc>)"
