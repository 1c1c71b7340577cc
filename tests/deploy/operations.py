"""What the tests of operating the proxy share: a backend whose answers take time (to be
in flight when a signal comes), the settings file of a proxy process, and requests to it."""

from __future__ import annotations

import asyncio
import http.client
import threading

DOWNLOAD = 4 << 20


async def answer_slowly(handler):
    await asyncio.sleep(1.5)
    handler.finish(b"slow done")


async def download_slowly(handler):
    handler.set_header("Content-Length", str(DOWNLOAD))
    piece = b"d" * (DOWNLOAD // 32)
    for _ in range(32):
        handler.write(piece)
        await handler.flush()
        await asyncio.sleep(0.05)
    handler.finish()


async def stream_events(handler):
    handler.set_header("Content-Type", "text/event-stream")
    for i in range(5):
        handler.write(f"data: event {i}\n\n")
        await handler.flush()
        await asyncio.sleep(0.3)
    handler.finish()


def config_text(*sites: tuple[str, str], extra: str = "") -> str:
    lines = "".join(f'    "{n}": BackendSite("{n}", "{url}", None, []),\n' for n, url in sites)
    return f"from settings import *\n{extra}\nforward_list = {{\n{lines}}}\n"


def get(port: int, path: str, timeout: float = 30) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def in_thread(results: dict, key: str, fn, *args) -> threading.Thread:
    def run():
        try:
            results[key] = fn(*args)
        except Exception as exc:  # recorded, and the test says which one failed
            results[key] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread
