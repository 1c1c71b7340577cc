"""``team``: an application installed under a sub-path, ``/team/``, whose session cookie
has ``Path=/team/`` and the same name, ``sid``, as the notes app's (demo/notes.py).
"""

from __future__ import annotations

from html import escape

from tornado.web import Application, HTTPError

from demo.apps import STYLE, AppHandler, DemoApp, application


class TeamPage(AppHandler):
    route = r"/team/(\w*)"

    def page(self, title: str, body: str) -> None:
        user = self.user()
        self.finish(
            "<!doctype html><html><head><meta charset=utf-8>"
            f"<title>Team: {escape(title)}</title><style>{STYLE % '#b5543f'}</style></head>"
            f"<body><header>Team board <b id=user>{escape(user or 'signed out')}</b></header>"
            '<main><nav><a href="/team/">Board</a> <a href="/team/about">About</a></nav>'
            f"<h1>{escape(title)}</h1>{body}</main>"
            '<script src="/team/static/team.js"></script></body></html>'
        )

    def get(self, what: str = "") -> None:
        if what == "about":
            self.page("About", "<p id=about>An app installed under /team/.</p>")
        elif what == "login":
            self.page(
                "Sign in",
                '<form id=login method=post action="/team/login">'
                "<input name=name value=bob> <button>Sign in</button></form>",
            )
        elif what == "" and self.user():
            posts = "".join(f"<li>{escape(p)}</li>" for p in self.app.items)
            self.page(
                "Board",
                '<form id=post method=post action="/team/post"><input name=text> '
                f"<button>Post</button></form><ul id=posts>{posts}</ul>"
                "<p>Posts counted by the page's script: <b id=count>…</b> "
                "<button id=recount>Count again</button></p>"
                '<form id=logout method=post action="/team/logout"><button>Sign out</button>'
                "</form>",
            )
        elif what == "":
            self.page("Board", '<p><a id=signin href="/team/login">Sign in</a> to post.</p>')
        else:
            raise HTTPError(404)

    def post(self, what: str) -> None:
        if what == "login":
            self.login(self.get_body_argument("name", "guest"), "/team/")
        elif what == "post" and self.user():
            self.app.items.append(self.get_body_argument("text", ""))
        elif what == "logout":
            self.app.sessions.pop(self.get_cookie("sid", ""), None)
            self.clear_cookie("sid", path="/team/")
        else:
            self.send_error(403)
            return
        self.redirect("/team/")


TEAM_JS = """
function recount() {  // a root-relative URL, built in script
  return fetch("/team/api/count").then(r => r.json()).then(d => {
    document.getElementById("count").textContent = String(d.count);
  });
}
if (document.getElementById("count")) {
  document.getElementById("recount").onclick = recount;
  recount();
}
"""


class TeamApi(AppHandler):
    route = r"/team/api/count"

    def get(self) -> None:
        if not self.user():
            self.send_error(401)
            return
        self.finish({"count": len(self.app.items)})


class TeamStatic(AppHandler):
    route = r"/team/static/team\.js"

    def get(self) -> None:
        self.set_header("Content-Type", "application/javascript")
        self.finish(TEAM_JS)


class TeamRoot(AppHandler):
    route = r"/"

    def get(self) -> None:
        self.redirect("/team/")

    head = get


def team_app(app: DemoApp) -> Application:
    return application({"app": app}, TeamRoot, TeamApi, TeamStatic, TeamPage)


__all__ = ["team_app"]
