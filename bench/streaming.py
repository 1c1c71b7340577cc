"""Big downloads: throughput and the proxy's peak memory, web_proxy beside nginx.

    python bench/streaming.py [--size-mib 1024] [--slow-mib-per-s 32]

An nginx serves one file of --size-mib (from the page cache) on 127.0.0.1; the
same nginx proxies it (proxy_pass, default buffering), and web_proxy proxies it. curl
downloads it through each, once as fast as it can and once limited to a slow rate,
while the proxy process's resident memory is sampled every 50 ms.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import ROOT, Nginx, Workers, free_port, make_docroot, need, rss_mib, save
from webproxy import site_url, start_web_proxy, write_config

MiB = 1024 * 1024


class Sampler(threading.Thread):
    def __init__(self, pids: list[int]) -> None:
        super().__init__(daemon=True)
        self.pids, self.peak, self.halt = pids, 0.0, threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            total = sum(rss_mib(pid) for pid in self.pids)
            self.peak = max(self.peak, total)
            self.halt.wait(0.05)


def download(url: str, limit: str | None) -> float:
    """MiB/s as curl measured it."""
    cmd = [need("curl"), "-s", "-o", "/dev/null", "-w", "%{speed_download} %{http_code}", url]
    if limit:
        cmd[1:1] = ["--limit-rate", limit]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.split()
    if out[1] != "200":
        sys.exit(f"bench: {url} answered {out[1]}")
    return float(out[0]) / MiB


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--slow-mib-per-s", type=int, default=32)
    # Three processes share two cores: a fast download runs at one of two speeds,
    # depending on whether the scheduler puts the proxy and curl on the same core.
    ap.add_argument("--rounds", type=int, default=3, help="fast downloads per target; best kept")
    args = ap.parse_args()

    docroot = make_docroot({})
    path = os.path.join(docroot, "big.bin")
    block = os.urandom(MiB)
    with open(path, "wb") as f:
        for _ in range(args.size_mib):
            f.write(block)
    os.chmod(path, 0o644)
    nginx = Nginx(docroot)
    backend = f"http://127.0.0.1:{nginx.static_port}"
    port = free_port()
    config = write_config(f'    "files": BackendSite("files", "{backend}", None, []),')
    proxy = start_web_proxy(port, config)
    idle_rss = proxy.rss_mib()  # started and answered its health check, serving nothing
    targets = {
        "direct backend (nginx static)": (f"{backend}/big.bin", []),
        "nginx proxy_pass": (
            f"http://127.0.0.1:{nginx.proxy_port}/big.bin",
            Workers(nginx.proc.pid).pids,
        ),
        "web_proxy": (site_url(port, "files", "/big.bin"), [proxy.proc.pid]),
    }
    slow = f"{args.slow_mib_per_s}M"
    results: dict[str, dict[str, float]] = {}
    try:
        for name, (url, pids) in targets.items():
            row: dict[str, float] = {}
            for label, limit in (("fast", None), ("slow", slow)):
                if label == "slow" and not pids:
                    continue
                for _ in range(args.rounds if label == "fast" else 1):
                    sampler = Sampler(pids)
                    sampler.start()
                    start = time.monotonic()
                    speed = download(url, limit)
                    seconds = time.monotonic() - start
                    sampler.halt.set()
                    sampler.join()
                    if speed > row.get(f"{label}_mib_s", 0.0):
                        row[f"{label}_mib_s"], row[f"{label}_seconds"] = speed, seconds
                    if pids:
                        peak = max(row.get(f"{label}_peak_rss_mib", 0.0), sampler.peak)
                        row[f"{label}_peak_rss_mib"] = peak
            results[name] = row
    finally:
        proxy.stop()
        nginx.stop()
        os.unlink(config)
        os.unlink(path)
    size = args.size_mib
    print(
        f"{size} MiB download through each, curl to /dev/null (fast: best of {args.rounds});"
        f" slow client at {slow}/s"
    )
    print(f"{'target':32} {'fast MiB/s':>11} {'peak RSS':>9} {'slow MiB/s':>11} {'peak RSS':>9}")
    for name, r in results.items():
        print(
            f"{name:32} {r['fast_mib_s']:11.0f} {r.get('fast_peak_rss_mib', 0):8.0f}M"
            f" {r.get('slow_mib_s', 0):11.1f} {r.get('slow_peak_rss_mib', 0):8.0f}M"
        )
    ratio = results["web_proxy"]["fast_mib_s"] / results["nginx proxy_pass"]["fast_mib_s"]
    print(f"web_proxy / nginx throughput: {ratio:.2f}")
    above = {
        label: results["web_proxy"][f"{label}_peak_rss_mib"] - idle_rss
        for label in ("fast", "slow")
    }
    print(
        f"web_proxy idle RSS {idle_rss:.0f} MiB; peak above idle: fast {above['fast']:.1f} MiB,"
        f" slow {above['slow']:.1f} MiB"
    )
    results["ratio_to_nginx"] = {"fast": ratio}
    results["web_proxy_rss_above_idle_mib"] = above
    saved = save("streaming", {"args": vars(args), "results": results})
    print(f"saved {os.path.relpath(saved, ROOT)}")


if __name__ == "__main__":
    main()
