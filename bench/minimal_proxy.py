"""The obvious minimal Tornado reverse proxy, as a yardstick for web_proxy's overhead.

One CurlAsyncHTTPClient, the whole body buffered, headers copied. No site table, no
rewriting, no streaming, no safety: it exists only to be measured against.

    python bench/minimal_proxy.py PORT BACKEND_URL
"""

import asyncio
import sys

from tornado.curl_httpclient import CurlAsyncHTTPClient
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.web import Application, RequestHandler

SKIP = {"content-length", "transfer-encoding", "connection", "keep-alive", "server", "date"}


class Proxy(RequestHandler):
    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")

    def initialize(self, client, backend):
        self.client, self.backend = client, backend

    async def get(self):
        headers = {k: v for k, v in self.request.headers.get_all() if k.lower() not in SKIP}
        req = HTTPRequest(
            self.backend + self.request.uri,
            method=self.request.method,
            headers=headers,
            body=self.request.body or None,
            follow_redirects=False,
            allow_nonstandard_methods=True,
        )
        try:
            resp = await self.client.fetch(req, raise_error=False)
        except HTTPClientError:
            raise
        self.set_status(resp.code, resp.reason)
        for k, v in resp.headers.get_all():
            if k.lower() not in SKIP:
                self.add_header(k, v)
        if resp.body:
            self.write(resp.body)

    head = post = put = delete = patch = options = get


async def main(port, backend):
    client = CurlAsyncHTTPClient(max_clients=200)
    app = Application([(r".*", Proxy, {"client": client, "backend": backend})])
    app.listen(port, "127.0.0.1")
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2].rstrip("/")))
