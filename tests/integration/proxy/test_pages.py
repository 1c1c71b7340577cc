"""The proxy's own pages: the site list, the health check, and the pages that stand in
for a backend that refuses (502) or does not answer in time (504)."""


def test_site_list_and_health(stack):
    for path in ("/", "/.proxy/", "/.proxy"):
        resp, data = stack["proxy"].request("GET", path)
        assert resp.status == 200, path
        assert b"/.site.a/" in data and b"/.site.b/" in data
    resp, data = stack["proxy"].request("GET", "/.proxy/health")
    assert (resp.status, data) == (200, b"ok\n")


def test_connection_refused_is_502_page(stack):
    resp, data = stack["proxy"].request("GET", "/.site.down/x")
    assert resp.status == 502
    assert b"down" in data and b'href="/.proxy/"' in data
    assert b"Traceback" not in data and b"599" not in data


def test_timeout_is_504_page(stack):
    resp, data = stack["proxy"].request("GET", "/.site.slow/slow")
    assert resp.status == 504
    assert b"slow" in data and b'href="/.proxy/"' in data
