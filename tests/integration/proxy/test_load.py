"""Under load: many concurrent requests to a proxy process all answered by the backend,
and handlers freed without the cycle collector."""

import json


def test_many_concurrent_requests_all_complete(stack, tmp_path):
    """Under load the fetch can complete before the IOLoop has run the callbacks that
    carry its headers; every response must still be the backend's, never a 502. (The
    proxy runs in a process of its own, where that ordering showed up.)"""
    import concurrent.futures
    import http.client

    from tests.support import run_proxy_process

    b = stack["b"]
    config = (
        f"from settings import *\nforward_list = {{'b': BackendSite('b', '{b.url}', None, [])}}\n"
    )
    proc, port = run_proxy_process(config, tmp_path)

    def worker(n):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        statuses = []
        for i in range(100):
            conn.request("GET", f"/plain/{n}/{i}", headers={"Cookie": ".site=b"})
            resp = conn.getresponse()
            body = resp.read()
            statuses.append(
                (resp.status, resp.status == 200 and json.loads(body)["uri"] == f"/plain/{n}/{i}")
            )
        conn.close()
        return statuses

    try:
        with concurrent.futures.ThreadPoolExecutor(24) as pool:
            results = [s for chunk in pool.map(worker, range(24)) for s in chunk]
    finally:
        proc.terminate()
        proc.wait(10)
    assert len(results) == 2400
    failed = [r for r in results if r != (200, True)]
    assert failed == [], f"{len(failed)} failed, e.g. {failed[:3]}"


def test_handlers_are_freed_without_the_cycle_collector(stack):
    """A finished request leaves no reference cycle behind: left to the cyclic garbage
    collector, handlers piled up and its passes doubled the p99 latency."""
    import gc

    from handlers.relay.handler import ProxyHandler

    def live_handlers():
        return sum(1 for o in gc.get_objects() if isinstance(o, ProxyHandler))

    gc.collect()
    gc.disable()
    try:
        before = live_handlers()
        for i in range(50):
            resp, _ = stack["proxy"].request("GET", f"/.site.b/gc/{i}")
            assert resp.status == 200
        after = live_handlers()
    finally:
        gc.enable()
    assert after - before <= 2, f"{after - before} handlers still alive"
