"""The obvious minimal Tornado reverse proxy, as a yardstick for web_proxy's overhead.

One CurlAsyncHTTPClient, the whole body buffered, headers copied. No site table, no
streaming, no safety: it exists only to be measured against.

    python bench/minimal_proxy.py PORT BACKEND_URL [SITE_NAME]

With a site name it is the rewriting twin: an HTML page is decoded in its declared
charset (UTF-8 when none), one regular expression gives every double-quoted attribute
URL that is root-relative or names the backend the prefix ``/.site.NAME/``, and the
text is encoded again. The expression starts with a literal and its replacement is a
constant, so the regex engine does all the work in C: the fast way to write it. This
is the single-regex rewrite web_proxy's rewriting is compared with (bench/small_page.py,
bench/rewrite.py).
"""

from __future__ import annotations

import asyncio
import re
import sys

from tornado.curl_httpclient import CurlAsyncHTTPClient
from tornado.httpclient import HTTPRequest
from tornado.web import Application, RequestHandler

SKIP = {"content-length", "transfer-encoding", "connection", "keep-alive", "server", "date"}


class Rewrite:
    """The twin's one rule, for one backend and one site name."""

    def __init__(self, backend: str, name: str) -> None:
        self.pattern = re.compile(f'="(?:{re.escape(backend)})?/(?!/)')
        self.replacement = f'="/.site.{name}/'

    def apply(self, body: bytes, content_type: str) -> bytes:
        if not content_type.startswith("text/html"):
            return body
        _, _, charset = content_type.partition("charset=")
        codec = charset.strip() or "utf-8"
        return self.pattern.sub(self.replacement, body.decode(codec)).encode(codec)


class Proxy(RequestHandler):
    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")

    def initialize(
        self, client: CurlAsyncHTTPClient, backend: str, rewrite: Rewrite | None
    ) -> None:
        self.client, self.backend, self.rewrite = client, backend, rewrite

    async def get(self) -> None:
        headers = {k: v for k, v in self.request.headers.get_all() if k.lower() not in SKIP}
        req = HTTPRequest(
            self.backend + self.request.uri,
            method=self.request.method,
            headers=headers,
            body=self.request.body or None,
            follow_redirects=False,
            allow_nonstandard_methods=True,
        )
        resp = await self.client.fetch(req, raise_error=False)
        self.set_status(resp.code, resp.reason)
        for k, v in resp.headers.get_all():
            if k.lower() not in SKIP:
                self.add_header(k, v)
        body = resp.body
        if body and self.rewrite is not None:
            body = self.rewrite.apply(body, resp.headers.get("Content-Type", ""))
        if body:
            self.write(body)

    head = post = put = delete = patch = options = get


async def main(port: int, backend: str, name: str | None) -> None:
    client = CurlAsyncHTTPClient(max_clients=200)
    rewrite = Rewrite(backend, name) if name else None
    args = {"client": client, "backend": backend, "rewrite": rewrite}
    app = Application([(r".*", Proxy, args)])
    app.listen(port, "127.0.0.1")
    await asyncio.Event().wait()


if __name__ == "__main__":
    site = sys.argv[3] if len(sys.argv) > 3 else None
    asyncio.run(main(int(sys.argv[1]), sys.argv[2].rstrip("/"), site))
