"""The metrics and the access log tell what happened: one count and one line per request,
lines written in batches, a log that follows logrotate."""

from __future__ import annotations

import asyncio
import re
import time

from prometheus_client.parser import text_string_to_metric_families

from handlers.config.sites import BackendSite
from tests.support import free_port, start_backend, start_proxy


def test_metrics_and_access_log_match_the_requests_sent(loop_thread, tmp_path):
    backend = start_backend(loop_thread, "m")
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    access = tmp_path / "access.log"
    proxy = start_proxy(
        loop_thread,
        {"m": BackendSite("m", backend.url, None, []), "dead": BackendSite("dead", dead, None, [])},
        access_log=str(access),
    )
    sent = []
    for i in range(5):
        sent.append(("GET", f"/.site.m/page/{i}", 200))
    sent += [("GET", "/.site.nope/x", 404), ("GET", "/.site.nope/y", 404)]
    sent.append(("GET", "/.site.m/" + "a" * 9000, 414))  # answered by the front door
    sent.append(("POST", "/.site.m/form", 200))
    sent.append(("GET", "/.site.dead/x", 502))
    for method, path, status in sent:
        response, _ = proxy.request(method, path, body=b"a=1" if method == "POST" else None)
        assert response.status == status
    response, body = proxy.request("GET", "/.proxy/metrics")
    assert response.status == 200
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }

    def value(name, **labels):
        return samples.get((name, tuple(sorted(labels.items()))), 0)

    assert value("web_proxy_requests_total", site="m", method="GET", status="2xx") == 5
    assert value("web_proxy_requests_total", site="m", method="POST", status="2xx") == 1
    assert value("web_proxy_requests_total", site="-", method="GET", status="4xx") == 3
    assert value("web_proxy_requests_total", site="dead", method="GET", status="5xx") == 1
    assert value("web_proxy_upstream_errors_total", site="dead", kind="connect") == 1
    assert value("web_proxy_upstream_seconds_count", site="m") == 6
    assert value("web_proxy_received_bytes_total", site="m") == 3
    assert value("web_proxy_requests_in_flight") == 1  # this scrape
    assert value("web_proxy_sent_bytes_total", site="m") > 0

    # One access log line per request, in nginx's combined format plus the timings.
    # Lines are written in batches, within half a second. (The scrape's own line may or
    # may not be there yet: it is written once it ends.)
    deadline = time.monotonic() + 5
    while True:
        text = access.read_text() if access.exists() else ""
        lines = [line for line in text.splitlines() if "/.proxy/metrics" not in line]
        if len(lines) >= len(sent) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(lines) == len(sent)
    line_re = re.compile(
        r'^127\.0\.0\.1 - - \[[^\]]+\] "(\w+) (\S+) HTTP/1\.1" (\d{3}) (\d+) "-" "[^"]*"'
        r" site=(\S+) rt=\d+\.\d{3} urt=(-|\d+\.\d{3})$"
    )
    for line, (method, path, status) in zip(lines, sent, strict=True):
        m = line_re.match(line)
        assert m, line
        assert (m.group(1), m.group(2), int(m.group(3))) == (method, path, status)
        site = {"/.site.m": "m", "/.site.d": "dead"}.get(path[:8], "-")
        assert m.group(5) == (site if status != 414 else "-")
        assert (m.group(6) == "-") == (status in (404, 414))

    # Only config.metrics_allow may read them; behind a trusted proxy, the browser's
    # address is the one that counts.
    response, _ = proxy.request(
        "GET", "/.proxy/metrics", headers={"X-Forwarded-For": "203.0.113.9"}
    )
    assert response.status == 403


def test_the_access_log_is_written_in_batches_and_follows_logrotate(tmp_path):
    from dataclasses import replace

    from handlers.ops.accesslog import AccessLog
    from handlers.ops.record import AccessRecord

    async def main():
        path = tmp_path / "access.log"
        access = AccessLog(str(path), "json")
        record = AccessRecord("GET", target="/x", status=200)
        access.request(record)
        assert not path.exists() or path.read_text() == ""  # buffered
        await asyncio.sleep(AccessLog.FLUSH_SECONDS + 0.2)
        assert path.read_text().count('"target":"/x"') == 1  # written within the period
        path.rename(tmp_path / "access.log.1")  # logrotate moves it away
        access.request(replace(record, target="/y"))
        access.close()  # shutdown writes what waits
        assert '"target":"/y"' in path.read_text()
        assert '"target":"/y"' not in (tmp_path / "access.log.1").read_text()

    asyncio.run(main())
