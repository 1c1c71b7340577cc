"""HTTPS backends: verified by default, an intranet CA via ca_certs, or not verified."""

import json
import ssl

import pytest
import trustme

from handlers.config.sites import BackendSite
from tests.support import start_backend, start_proxy


@pytest.fixture(scope="module")
def tls(loop_thread, tmp_path_factory):
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    backend = start_backend(loop_thread, "tls", ssl_options=server_ctx)
    ca_file = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    url = f"https://127.0.0.1:{backend.port}"
    sites = {
        "trusted": BackendSite("trusted", url, None, [], ca_certs=str(ca_file)),
        "default": BackendSite("default", url, None, []),
        "unverified": BackendSite("unverified", url, None, [], validate_cert=False),
        "plain": BackendSite("plain", f"http://127.0.0.1:{backend.port}", None, []),
    }
    return backend, start_proxy(loop_thread, sites)


def test_intranet_ca_verifies(tls):
    _backend, proxy = tls
    resp, data = proxy.request("GET", "/.site.trusted/x")
    assert resp.status == 200 and json.loads(data)["uri"] == "/x"


def test_unknown_ca_is_refused_with_502(tls):
    backend, proxy = tls
    before = len(backend.seen)
    resp, data = proxy.request("GET", "/.site.default/x")
    assert resp.status == 502 and b"default" in data
    assert len(backend.seen) == before


def test_ca_of_one_site_does_not_leak_to_another(tls):
    # Pooled curl handles keep CAINFO: a handle used for "trusted" must not make
    # "default" trust the private CA afterwards.
    _backend, proxy = tls
    for _ in range(5):
        assert proxy.request("GET", "/.site.trusted/x")[0].status == 200
        assert proxy.request("GET", "/.site.default/x")[0].status == 502


def test_validate_cert_false_accepts_self_signed(tls):
    _backend, proxy = tls
    resp, data = proxy.request("GET", "/.site.unverified/y")
    assert resp.status == 200 and json.loads(data)["uri"] == "/y"


def test_validate_cert_false_warns_at_start_up(caplog):
    from handlers.config.sites import build_site_table

    build_site_table({"u": BackendSite("u", "https://127.0.0.1:1", None, [], validate_cert=False)})
    assert "validate_cert=False" in caplog.text


def test_plain_http_to_tls_port_is_502(tls):
    _backend, proxy = tls
    resp, _ = proxy.request("GET", "/.site.plain/x")
    assert resp.status == 502
