"""POST bodies holding the proxy's URLs: what mapping them back to the backend's costs.

    python bench/request_body.py [--seconds 5] [--connections 8 32] [--rounds 3]

Two bodies: a 100 KB urlencoded form (a post editor's fields, one a rich-text field with
200 percent-encoded proxy URLs) and a 1 MiB JSON document (2,200 strings holding proxy
URLs, plain, absolute, ``\\/``-escaped, among unicode text, raw and ``\\u``-escaped).
Each is POSTed with wrk to the backend directly, through nginx proxy_pass and through
web_proxy with map_requests off and on, all on 127.0.0.1 in one run; best of ``--rounds``.

The backend, the same for every row, is this file run with ``--backend PORT``: a raw
asyncio server on uvloop that reads each body whole (Content-Length) and answers ``ok``.
nginx (``return 200``) would swallow bodies faster but cannot show what it received, and
its one worker would be both backend and proxy in the nginx rows; Tornado would make the
backend as slow as the proxies. It keeps the last body it read (``GET /last``), checked
after every measured run against the body sent, unchanged or mapped as the row expects.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import ROOT, UNITS_MS, Nginx, Process, Workers, WrkResult, free_port, need, save
from webproxy import SITE_MARK, site_path, start_web_proxy, write_config

LOREM = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor. "
Server = Process | Workers
APP = site_path("app", "")  # the prefix of the site whose URLs the bodies hold
MARK = SITE_MARK.encode()  # what every proxy URL in a body holds
UNICODE = "Grüße aus Zürich, café crème, 東京の夜, Ελληνικά, emoji 🎉✓ — “quoted” "


class Sink(asyncio.Protocol):
    """HTTP/1.1 keep-alive server that reads bodies whole; GET returns the last body."""

    last: list[bytes] = []  # the last POST body's chunks, for GET

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.buf, self.left, self.get = b"", -1, False  # left < 0: reading a head
        self.chunks: list[bytes] = []

    def data_received(self, data: bytes) -> None:
        while True:
            if self.left < 0:
                self.buf += data
                end = self.buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                head, data, self.buf = self.buf[:end], self.buf[end + 4 :], b""
                m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
                self.left, self.get, self.chunks = int(m[1]) if m else 0, head[:4] == b"GET ", []
            take = data[: self.left]  # the whole chunk is not copied
            self.chunks.append(take)
            self.left -= len(take)
            data = data[len(take) :]
            if self.left:
                return
            if self.get:
                body = b"".join(Sink.last)
            else:
                Sink.last, body = self.chunks, b"ok\n"
            head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)
            self.transport.write(head + body)
            self.left = -1
            if not data:
                return


def form_body(proxy: str) -> bytes:
    """About 100 KB: a post editor's form; its content holds 200 proxy URLs."""
    paragraphs = []
    for i in range(200):
        tag = f'<img src="{APP}/uploads/2024/05/photo-{i:04d}.jpg" alt="photo {i}">'
        if i % 2 == 0:
            tag = f'<a href="{proxy}{APP}/docs/page-{i:04d}.html">page {i}</a>'
        paragraphs.append(f"<p>{LOREM * 4}{tag} {UNICODE if i % 10 == 0 else ''}</p>\n")
    fields = [
        ("_wpnonce", "8f2c1a9d3e"),
        ("post_title", "Spring gallery: 200 photos from the trip"),
        ("post_name", "spring-gallery"),
        ("content", "".join(paragraphs)),
        ("excerpt", LOREM * 20),
        ("tags", "travel, photos, spring, gallery"),
        ("status", "publish"),
        ("notes", LOREM * 62),
    ]
    return urllib.parse.urlencode(fields).encode()


def json_body(proxy: str) -> bytes:
    """About 1 MiB of JSON: 2,000 strings hold proxy URLs, some ``\\/``-escaped."""
    blocks: list[dict[str, object]] = []
    for i in range(2000):
        url = [
            f"{APP}/uploads/2024/05/img-{i:04d}.jpg",
            f"{proxy}{APP}/docs/page-{i:04d}.html",
            f"{APP}/media/clip-{i:04d}.mp4",  # written \/-escaped below
            f'<p>See <a href="{APP}/docs/{i:04d}">this</a> {UNICODE}</p>',
        ][i % 4]
        text = (UNICODE if i % 3 == 0 else "") + LOREM * 4
        blocks.append({"id": i, "type": "para", "url": url, "text": text, "n": [i, i * 2.5]})
    doc = json.dumps({"title": "Export", "blocks": blocks}, ensure_ascii=False)
    doc = re.sub(f'"{re.escape(APP)}/media/[^"]*"', lambda m: m[0].replace("/", "\\/"), doc)
    links = [f'{LOREM}{UNICODE}<a href="{APP}/t/{i}">' for i in range(200)]
    translations = json.dumps(links)  # \u-escaped, as PHP writes JSON
    return f'{{"doc":{doc},"translations":{translations}}}'.encode()


def canonical(body: bytes, kind: str, proxy: str, backend: str | None) -> str:
    """The body's meaning as a string; with ``backend``, its proxy URLs mapped by hand."""
    if kind == "form":
        text = json.dumps(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True))
    else:
        text = json.dumps(json.loads(body), ensure_ascii=False)
    for origin in (proxy, "") if backend else ():  # the absolute URLs first
        text = text.replace(f"{origin}{APP}/", f"{backend}/")
    return text


def settle(proc: Server) -> None:
    """Waits for ``proc`` to go idle: web_proxy maps the bodies a wrk run left, then drops them."""
    cpu = -1.0
    while (now := proc.cpu_seconds()) - cpu > 0.01:
        cpu = now
        time.sleep(0.3)


def check(name: str, sent: bytes, kind: str, backend: str, proxy: str | None) -> None:
    """The backend's last body is ``sent`` as it was or, given the ``proxy``'s origin, with
    every proxy URL in it mapped back to the ``backend``'s."""
    with urllib.request.urlopen(f"{backend}/last", timeout=10) as r:
        got = r.read()
    if proxy is None:
        ok = got == sent
    else:
        spelled = f"127.0.0.1%3A{backend.rsplit(':', 1)[1]}" if kind == "form" else backend[7:]
        ok = (
            MARK not in got
            and got.count(spelled.encode()) == sent.count(MARK)
            and canonical(got, kind, proxy, None) == canonical(sent, kind, proxy, backend)
        )
    if not ok:
        sys.exit(f"bench: {name}: the backend did not receive the expected body")


def wrk_post(
    url: str, script: str, seconds: int, conns: int, proc: Server
) -> tuple[WrkResult, float]:
    """harness.wrk with a Lua script (it takes none), from idle; and ``proc``'s CPU seconds."""
    settle(proc)
    cpu = proc.cpu_seconds()
    opts = ["-t1", f"-c{conns}", f"-d{seconds}s", "--latency", "--timeout=60s", "-s"]
    run = subprocess.run([need("wrk"), *opts, script, url], capture_output=True)
    cpu, out = proc.cpu_seconds() - cpu, run.stdout.decode()

    def find(pattern: str) -> list[str]:
        m = re.search(pattern, out)
        return list(m.groups()) if m else []

    p99 = find(r"99%\s+([\d.]+)(us|ms|s)")
    errors = r"(?:Non-2xx or 3xx responses:|connect|read|write|timeout) (\d+)"
    result = WrkResult(
        int(find(r"(\d+) requests in")[0]),
        float(find(r"Requests/sec:\s+([\d.]+)")[0]),
        float(p99[0]) * UNITS_MS[p99[1]] if p99 else float("nan"),
        sum(int(x) for x in re.findall(errors, out)),
    )
    if result.errors:
        print(out, file=sys.stderr)
    return result, cpu


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--connections", type=int, nargs="+", default=[8, 32])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--backend", type=int, help=argparse.SUPPRESS)  # run as the backend
    args = ap.parse_args()
    if args.backend:
        import uvloop

        loop = uvloop.new_event_loop()
        loop.run_until_complete(loop.create_server(Sink, "127.0.0.1", args.backend))
        return loop.run_forever()

    local, bport, wp_port = "http://127.0.0.1", free_port(), free_port()
    backend, proxy = f"{local}:{bport}", f"{local}:{wp_port}"
    sink = Process([sys.executable, __file__, "--backend", str(bport)], f"{backend}/last")
    workdir = tempfile.mkdtemp(prefix="bench-bodies-")  # the bodies, for wrk's scripts
    nginx = Nginx(
        workdir,
        proxy_to=backend,
        # The static server proxies too, with room for these bodies in memory (the
        # harness's proxy server keeps nginx's defaults: bodies over 16 KB to a file).
        extra="client_max_body_size 16m; client_body_buffer_size 2m; location / {"
        ' proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; }',
    )
    workers = Workers(nginx.proc.pid)
    config = write_config(
        f'    "app": BackendSite("app", "{backend}", None, []),\n'
        f'    "raw": BackendSite("raw", "{backend}", None, [], map_requests=False),'
    )
    web_proxy = start_web_proxy(wp_port, config)
    bodies: dict[str, tuple[str, str, bytes]] = {
        "100 KB form": ("form", "application/x-www-form-urlencoded", form_body(proxy)),
        "1 MiB JSON": ("json", "application/json; charset=utf-8", json_body(proxy)),
    }
    scripts = {}
    for label, (kind, ctype, body) in bodies.items():
        assert len(body) <= 1 << 20, len(body)  # nginx's default client_max_body_size
        scripts[label] = path = os.path.join(workdir, kind)
        with open(path, "wb") as f, open(path + ".lua", "w") as lua:
            f.write(body)
            lua.write(
                f'local f = assert(io.open("{path}", "rb"))\nwrk.body = f:read("*a")\n'
                f'f:close()\nwrk.method = "POST"\nwrk.headers["Content-Type"] = "{ctype}"\n'
            )
    rows: dict[str, tuple[str, Server, bool]] = {
        "direct backend": (f"{backend}/submit", sink, False),
        "nginx proxy_pass, defaults": (f"{local}:{nginx.proxy_port}/submit", workers, False),
        "nginx proxy_pass, 2 MiB buffer": (f"{local}:{nginx.static_port}/submit", workers, False),
        "web_proxy, mapping off": (proxy + site_path("raw", "/submit"), web_proxy, False),
        "web_proxy, mapping on": (f"{proxy}{APP}/submit", web_proxy, True),
    }
    results: dict[str, dict[str, dict[str, float]]] = {}
    try:
        plan = itertools.product(range(args.rounds), bodies.items(), args.connections, rows)
        for _, (label, (kind, _ctype, body)), conns, name in plan:
            (url, proc, mapped), key = rows[name], f"{label}, c{conns}"
            script = scripts[label] + ".lua"
            wrk_post(url, script, 1, conns, proc)  # warm up
            r, cpu = wrk_post(url, script, args.seconds, conns, proc)
            if r.requests < 10 * conns:  # answers may come in waves of ``conns``: see ten
                seconds = min(60, math.ceil(10 * conns / max(r.rps, 0.1)))
                r, cpu = wrk_post(url, script, seconds, conns, proc)
            if r.errors or not r.requests:
                sys.exit(f"bench: {key}, {name}: {r.errors} errors, {r.requests} requests")
            check(f"{key}, {name}", body, kind, backend, proxy if mapped else None)
            if r.rps > results.setdefault(key, {}).get(name, {"rps": 0.0})["rps"]:
                results[key][name] = {
                    "rps": r.rps,
                    "p99_ms": r.p99_ms,
                    "mib_per_s": r.rps * len(body) / (1 << 20),
                    "cpu_us_per_request": 1e6 * cpu / r.requests,
                }
    finally:
        web_proxy.stop()
        nginx.stop()
        sink.stop()
        os.unlink(config)
        shutil.rmtree(workdir)
    print(f"POST bodies, wrk -t1 -d{args.seconds}s, best of {args.rounds}; CPU: the row's server")
    for label, (_kind, _ctype, body) in bodies.items():
        print(f"\n{label} ({len(body):,} bytes, {body.count(MARK):,} proxy URLs)")
        print(f"{'target':32} conn {'req/s':>8} {'p99 ms':>8} {'MiB/s':>7} {'CPU µs/req':>10}")
        for conns in args.connections:
            for name, row in results[f"{label}, c{conns}"].items():
                print(
                    f"{name:32} {conns:4} {row['rps']:8.0f} {row['p99_ms']:8.2f}"
                    f" {row['mib_per_s']:7.0f} {row['cpu_us_per_request']:10.0f}"
                )
    ratios: dict[str, dict[str, float]] = {}
    for key, res in results.items():
        on, off = res["web_proxy, mapping on"], res["web_proxy, mapping off"]
        nginx_row = res["nginx proxy_pass, 2 MiB buffer"]
        mib = len(bodies[key.split(",")[0]][2]) / (1 << 20)
        cost = (on["cpu_us_per_request"] - off["cpu_us_per_request"]) / 1000 / mib
        ratios[key] = {
            "mapping on / off, req/s": on["rps"] / off["rps"],
            "mapping on / off, p99": on["p99_ms"] / off["p99_ms"],
            "mapping on / off, CPU": on["cpu_us_per_request"] / off["cpu_us_per_request"],
            "mapping's CPU ms per MiB": cost,
            "web_proxy off / nginx, req/s": off["rps"] / nginx_row["rps"],
            "web_proxy on / nginx, req/s": on["rps"] / nginx_row["rps"],
            "web_proxy on / nginx, CPU": on["cpu_us_per_request"] / nginx_row["cpu_us_per_request"],
        }
        print(f"\n{key}: " + ", ".join(f"{k} {v:.3g}" for k, v in ratios[key].items()))
    path = save("request_body", {"args": vars(args), "results": results, "ratios": ratios})
    print(f"saved {os.path.relpath(path, ROOT)}")


if __name__ == "__main__":
    main()
