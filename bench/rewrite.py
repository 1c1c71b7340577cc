"""What rewriting costs: a 1 MiB page with 10,000 backend links, and a 9 KB page with
100, through web_proxy with rewriting on and off, beside the backend itself.

    python bench/rewrite.py [--requests 40] [--seconds 8] [--rounds 3]

Everything runs on 127.0.0.1, in one run: an nginx backend serves the pages, and one
web_proxy process serves two sites on that backend, "on" (automatic rewriting, the
default) and "off" (auto_rewrite=False, prefix_links=False). The 1 MiB page also goes
through the minimal proxy's one-regex rewriting twin (bench/minimal_proxy.py).
"""

from __future__ import annotations

import http.client
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import ROOT, Nginx, Process, free_port, make_docroot, options, save, wrk
from webproxy import site_path, site_url, start_web_proxy, write_config


def page(origin: str, size: int, links: int) -> bytes:
    """HTML of about ``size`` bytes holding ``links`` absolute links to ``origin``, the
    rest of it ordinary text."""
    link = f'<p><a href="{origin}/docs/00000.html">document</a> </p>\n'
    filler = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod. " * 8
    per = max(0, (size - 64) // links - len(link))
    rows = [
        f'<p><a href="{origin}/docs/{i:05d}.html">document</a> {filler[:per]}</p>\n'
        for i in range(links)
    ]
    return ("<!doctype html><html><body>\n" + "".join(rows) + "</body></html>\n").encode()


def timed_get(port: int, path: str, count: int) -> tuple[float, int]:
    """Median milliseconds per GET over one keep-alive connection, and the body size."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    times, size = [], 0
    for i in range(count + 3):
        t = time.perf_counter()
        conn.request("GET", path, headers={"Cookie": ""})
        body = conn.getresponse().read()
        if i >= 3:  # warm-up
            times.append((time.perf_counter() - t) * 1000)
        size = len(body)
    conn.close()
    return statistics.median(times), size


def in_process_rewrite_ms(body: bytes, origin: str) -> float:
    """The pipeline alone, without sockets: median ms to rewrite ``body``."""
    from filters.pipeline import build_plans
    from handlers.config.sites import BackendSite, build_site_table

    table = build_site_table({"on": BackendSite("on", origin, None, [])})
    rewriter = build_plans(table)["on"].for_response("/big.html", "text/html", None)
    assert rewriter is not None, "an HTML page of a rewriting site gets a rewriter"
    times = []
    for _ in range(20):
        t = time.perf_counter()
        out = rewriter.rewrite(body, 64 << 20)
        times.append((time.perf_counter() - t) * 1000)
    assert out is not None and origin.encode() not in out
    return statistics.median(times)


def main() -> None:
    args = options(__doc__, requests=40, seconds=8, rounds=3)
    nginx = Nginx(make_docroot({}))
    origin = f"http://127.0.0.1:{nginx.static_port}"
    big = page(origin, 1 << 20, 10_000)
    small = page(origin, 9 * 1024, 100)
    # The page names the backend's port, which is known only once nginx is up.
    for name, body in (("big.html", big), ("small.html", small)):
        with open(os.path.join(nginx.docroot, name), "wb") as f:
            f.write(body)
    port = free_port()
    config = write_config(
        # The in-page shim off on both: rewriting is measured alone.
        f'    "on": BackendSite("on", "{origin}", None, [], shim=False),\n'
        f'    "off": BackendSite("off", "{origin}", None, [], auto_rewrite=False,'
        " prefix_links=False, shim=False),",
        extra="config.rewrite_max_bytes = 64 * 1024 * 1024\n",
    )
    proxy = start_web_proxy(port, config)
    twin_port = free_port()
    twin = Process(
        [sys.executable, "bench/minimal_proxy.py", str(twin_port), origin, "on"],
        f"http://127.0.0.1:{twin_port}/big.html",
    )
    results: dict[str, dict[str, float]] = {}
    try:
        # Round by round, each target in turn, so that a slow spell of the machine falls
        # on all of them; each target's best round counts (as wrk's best run does).
        targets = {
            "direct": (nginx.static_port, "/big.html"),
            "off": (port, site_path("off", "/big.html")),
            "on": (port, site_path("on", "/big.html")),
            "twin": (twin_port, "/big.html"),
        }
        ms: dict[str, float] = {}
        sizes: dict[str, int] = {}
        for _ in range(args.rounds):
            for name, (target_port, path) in targets.items():
                median, sizes[name] = timed_get(target_port, path, args.requests)
                ms[name] = min(ms.get(name, median), median)
        direct, off, on, regex = ms["direct"], ms["off"], ms["on"], ms["twin"]
        size = sizes["direct"]
        assert sizes["off"] == size == len(big) and sizes["on"] == sizes["twin"] != size
        mib = len(big) / (1 << 20)
        pipeline_ms = in_process_rewrite_ms(big, origin)
        results["big"] = {
            "bytes": len(big),
            "links": 10_000,
            "direct_ms": direct,
            "proxy_rewrite_off_ms": off,
            "proxy_rewrite_on_ms": on,
            "minimal_one_regex_ms": regex,
            "on_vs_one_regex": on / regex,
            "rewriting_adds_ms_per_mib": (on - off) / mib,
            "pipeline_ms_per_mib": pipeline_ms / mib,
            "pipeline_mib_per_s": mib / (pipeline_ms / 1000),
        }
        best: dict[str, float] = {}
        for _ in range(args.rounds):
            for name in ("off", "on"):
                r = wrk(site_url(port, name, "/small.html"), args.seconds, 32)
                if r.errors:
                    sys.exit(f"bench: {r.errors} errors")
                best[name] = max(best.get(name, 0.0), r.rps)
        results["small"] = {
            "bytes": len(small),
            "links": 100,
            "rps_rewrite_off": best["off"],
            "rps_rewrite_on": best["on"],
            "ratio": best["on"] / best["off"],
        }
    finally:
        proxy.stop()
        twin.stop()
        nginx.stop()
        os.unlink(config)
    b, s = results["big"], results["small"]
    print(
        f"1 MiB HTML page, 10,000 backend links (median of {args.requests} GETs on one"
        f" connection, best of {args.rounds} rounds)"
    )
    print(f"  straight from the backend        {b['direct_ms']:7.1f} ms")
    print(f"  through web_proxy, rewriting off {b['proxy_rewrite_off_ms']:7.1f} ms")
    print(f"  through web_proxy, rewriting on  {b['proxy_rewrite_on_ms']:7.1f} ms")
    print(f"  minimal proxy, one-regex rewrite {b['minimal_one_regex_ms']:7.1f} ms")
    print(f"  rewriting on / one-regex twin    {b['on_vs_one_regex']:7.2f}")
    print(f"  rewriting adds                   {b['rewriting_adds_ms_per_mib']:7.1f} ms per MiB")
    print(
        f"  the pipeline alone               {b['pipeline_ms_per_mib']:7.1f} ms per MiB"
        f" ({b['pipeline_mib_per_s']:.0f} MiB/s)"
    )
    print(f"9 KB page, 100 backend links (wrk -t1 -c32 -d{args.seconds}s, best of {args.rounds})")
    print(f"  rewriting off {s['rps_rewrite_off']:8.0f} req/s")
    print(f"  rewriting on  {s['rps_rewrite_on']:8.0f} req/s   ratio {s['ratio']:.2f}")
    path = save("rewrite", {"args": vars(args), "results": results})
    print(f"saved {os.path.relpath(path, ROOT)}")


if __name__ == "__main__":
    main()
