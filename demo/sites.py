"""The demo sites on loopback, for ``python proxy.py --demo``: two intranet sites
(demo/intranet.py), a single-page app (demo/notes.py) and an app under a sub-path
(demo/team.py), each on a free port, and the site table that puts them behind the proxy.
"""

from __future__ import annotations

from dataclasses import dataclass

from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from demo.apps import DemoApp
from demo.intranet import IntranetSite, intranet_app
from demo.notes import notes_app
from demo.team import team_app
from handlers.config.sites import BackendSite


@dataclass
class DemoSites:
    """The running demo: its site table, its servers, and the request logs of the two
    applications (demo/notes.py, demo/team.py)."""

    forward_list: dict[str, BackendSite]
    servers: list[HTTPServer]
    apps: dict[str, DemoApp]


def start_demo_sites() -> DemoSites:
    """Start the demo sites on free loopback ports (on the running IOLoop) and return
    the site table that puts them behind the proxy."""
    sites = [
        IntranetSite("demo", "Demo intranet", (31, 95, 191)),
        IntranetSite("wiki", "Demo wiki", (46, 140, 67)),
    ]
    apps = {"notes": DemoApp("notes"), "team": DemoApp("team")}
    applications = [
        *(intranet_app(site) for site in sites),
        notes_app(apps["notes"]),
        team_app(apps["team"]),
    ]
    sockets = [bind_sockets(0, "127.0.0.1")[0] for _ in applications]
    urls = [f"http://127.0.0.1:{sock.getsockname()[1]}" for sock in sockets]
    for site, url in zip(sites, urls, strict=False):
        site.own = url
    sites[0].other, sites[1].other = sites[1].own, sites[0].own
    servers = []
    for application, sock in zip(applications, sockets, strict=True):
        server = HTTPServer(application)
        server.add_sockets([sock])
        servers.append(server)
    # No rules needed: links to any of the sites are rewritten automatically.
    names = ["demo", "wiki", "notes", "team"]
    table = {
        name: BackendSite(name, url, url.split("//", 1)[1], [], description=DESCRIPTIONS[name])
        for name, url in zip(names, urls, strict=True)
    }
    return DemoSites(table, servers, apps)


DESCRIPTIONS = {
    "demo": "Pages that name their own address in links, images, CSS and scripts; a login;"
    " a WebSocket echo and a server-sent clock on Live; a GBK page.",
    "wiki": "A second site of the same kind, with the same cookie names: open both at once.",
    "notes": 'A single-page app that builds every URL in script from "baseUrl": "/": API'
    " calls, a WebSocket, a lazily loaded chunk; a cookie session with an XSRF token.",
    "team": "An app installed under /team/, whose session cookie (Path=/team/) has the same"
    " name as the notes app's.",
}
