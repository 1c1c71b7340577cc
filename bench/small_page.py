"""Small-page throughput: direct backend, nginx, a minimal Tornado proxy and web_proxy,
the last with the in-page shim off (the relay alone) and on (the page buffered and the
shim's tag put in its head).

    python bench/small_page.py [--seconds 8] [--connections 32] [--rounds 3]

All four serve the same 9 KB page from the same nginx backend, in the same run, on
127.0.0.1. Reports req/s, p99 latency, the proxies' CPU time per request, and ratios.
The best of ``--rounds`` runs per target is kept (the machine has 2 cores shared by
wrk, the backend and the proxy, so single runs are noisy).
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import (
    ROOT,
    Measured,
    Nginx,
    Process,
    Workers,
    free_port,
    make_docroot,
    options,
    save,
    wrk,
)
from webproxy import site_cookie, site_url, start_web_proxy, write_config


def page_9k() -> bytes:
    link = b'<p><a href="/docs/page-%04d.html">Item %04d</a> some text to read.</p>\n'
    body = b"<!doctype html><html><head><title>bench</title></head><body>\n"
    i = 0
    while len(body) < 9 * 1024 - 20:
        body += link % (i, i)
        i += 1
    return (body + b"</body></html>\n")[: 9 * 1024]


def main() -> None:
    args = options(__doc__, seconds=8, connections=32, rounds=3)
    nginx = Nginx(make_docroot({"page.html": page_9k()}))
    page_path = os.path.join(nginx.docroot, "page.html")
    backend = f"http://127.0.0.1:{nginx.static_port}"
    mp_port, wp_port, tp_port = free_port(), free_port(), free_port()
    workers = Workers(nginx.proc.pid)
    # Rewriting off: the yardstick is the relay itself (bench/rewrite.py measures that).
    config = write_config(
        f'    "bench": BackendSite("bench", "{backend}", None, [],'
        " auto_rewrite=False, prefix_links=False, shim=False),\n"
        f'    "shim": BackendSite("shim", "{backend}", None, [],'
        " auto_rewrite=False, prefix_links=False, shim=True),\n"
        # As users configure sites: rewriting on (the page's 100+ root-relative links).
        f'    "defaults": BackendSite("defaults", "{backend}", None, [], shim=False),\n'
        f'    "defaults_shim": BackendSite("defaults_shim", "{backend}", None, []),'
    )
    minimal = Process(
        [sys.executable, "bench/minimal_proxy.py", str(mp_port), backend],
        f"http://127.0.0.1:{mp_port}/page.html",
    )
    # The same page from memory, in Tornado on the loop web_proxy runs on: no proxy built
    # as a Tornado handler can be faster than this.
    ceiling = Process(
        [sys.executable, "bench/tornado_page.py", str(tp_port), page_path, "uvloop"],
        f"http://127.0.0.1:{tp_port}/",
    )
    web_proxy = start_web_proxy(wp_port, config)
    cookie = site_cookie("bench")
    targets: dict[str, tuple[str, dict[str, str], Measured]] = {
        "direct backend (nginx static)": (f"{backend}/page.html", {}, workers),
        "nginx proxy_pass": (f"http://127.0.0.1:{nginx.proxy_port}/page.html", {}, workers),
        "Tornado page from memory (ceiling)": (f"http://127.0.0.1:{tp_port}/", {}, ceiling),
        "minimal Tornado proxy": (f"http://127.0.0.1:{mp_port}/page.html", {}, minimal),
        "web_proxy (cookie)": (f"http://127.0.0.1:{wp_port}/page.html", cookie, web_proxy),
    }
    for label, site in (
        ("prefix", "bench"),
        ("prefix, shim on", "shim"),
        ("rewriting on", "defaults"),
        ("rewriting on, shim on", "defaults_shim"),
    ):
        targets[f"web_proxy ({label})"] = (site_url(wp_port, site, "/page.html"), cookie, web_proxy)
    results: dict[str, dict[str, float]] = {}
    try:
        for _ in range(args.rounds):
            for name, (url, headers, proc) in targets.items():
                wrk(url, 1, args.connections, headers)  # warm up
                cpu0 = proc.cpu_seconds()
                run = wrk(url, args.seconds, args.connections, headers)
                cpu = proc.cpu_seconds() - cpu0
                if run.errors:
                    sys.exit(f"bench: {name}: {run.errors} errors")
                best = results.get(name)
                if best is None or run.rps > best["rps"]:
                    results[name] = {
                        "rps": run.rps,
                        "p99_ms": run.p99_ms,
                        "cpu_us_per_request": 1e6 * cpu / run.requests,
                        "rss_mib": proc.rss_mib(),
                    }
    finally:
        web_proxy.stop()
        ceiling.stop()
        minimal.stop()
        nginx.stop()
        os.unlink(config)
    base = results["minimal Tornado proxy"]["rps"]
    print(
        f"small page (9 KB), wrk -t1 -c{args.connections} -d{args.seconds}s, best of {args.rounds}"
    )
    print(f"{'target':36} {'req/s':>9} {'p99 ms':>8} {'CPU µs/req':>11} {'× minimal':>10}")
    for name, r in results.items():
        per = f"{r['cpu_us_per_request']:.0f}" if r["cpu_us_per_request"] else "-"
        print(f"{name:36} {r['rps']:9.0f} {r['p99_ms']:8.2f} {per:>11} {r['rps'] / base:10.2f}")
    shim = {
        "rewriting off": results["web_proxy (prefix, shim on)"]["rps"]
        / results["web_proxy (prefix)"]["rps"],
        "rewriting on": results["web_proxy (rewriting on, shim on)"]["rps"]
        / results["web_proxy (rewriting on)"]["rps"],
    }
    for case, ratio in shim.items():
        print(f"shim on / off, {case}: {ratio:.3f}")
    # nginx's one worker served both the backend's request and the proxied one in the
    # proxy_pass run: its own cost as a proxy is the difference.
    nginx_cpu = (
        results["nginx proxy_pass"]["cpu_us_per_request"]
        - results["direct backend (nginx static)"]["cpu_us_per_request"]
    )
    rewriting, yardstick = results["web_proxy (rewriting on)"], results["minimal Tornado proxy"]
    ratios = {
        "rewriting on / minimal, req/s": rewriting["rps"] / yardstick["rps"],
        "rewriting on / minimal, p99": rewriting["p99_ms"] / yardstick["p99_ms"],
        "ceiling / minimal, req/s": results["Tornado page from memory (ceiling)"]["rps"]
        / yardstick["rps"],
        "nginx proxy_pass's own CPU µs/req": nginx_cpu,
        "web_proxy prefix CPU / nginx's": results["web_proxy (prefix)"]["cpu_us_per_request"]
        / nginx_cpu,
        "web_proxy rewriting on CPU / nginx's": rewriting["cpu_us_per_request"] / nginx_cpu,
    }
    for name, value in ratios.items():
        print(f"{name}: {value:.2f}")
    path = save(
        "small_page",
        {"args": vars(args), "results": results, "shim_on_off": shim, "ratios": ratios},
    )
    print(f"saved {os.path.relpath(path, ROOT)}")


if __name__ == "__main__":
    main()
