"""The ceiling of any proxy built as a Tornado RequestHandler: Tornado serving the same
page from memory, with no upstream request and no rewriting.

    python bench/tornado_page.py PORT PAGE_FILE [uvloop]
"""

import asyncio
import sys

from tornado.web import Application, RequestHandler


class Page(RequestHandler):
    def initialize(self, body: bytes) -> None:
        self.body = body

    def get(self) -> None:
        self.set_header("Content-Type", "text/html")
        self.write(self.body)


async def main(port: int, path: str) -> None:
    with open(path, "rb") as f:
        body = f.read()
    Application([(r".*", Page, {"body": body})]).listen(port, "127.0.0.1")
    await asyncio.Event().wait()


if __name__ == "__main__":
    coro = main(int(sys.argv[1]), sys.argv[2])
    if sys.argv[3:] == ["uvloop"]:
        import uvloop

        uvloop.run(coro)
    else:
        asyncio.run(coro)
