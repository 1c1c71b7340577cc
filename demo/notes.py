"""``notes``: a single-page app. Its page holds a JSON config with ``"baseUrl": "/"``, and
its script builds every URL from it at run time: API calls (fetch and XHR), a WebSocket, a
lazily loaded script chunk. It keeps a cookie session (``sid``) and a script-readable XSRF
cookie that it echoes in a header.
"""

from __future__ import annotations

import json
import secrets
from typing import ClassVar

from tornado.web import Application, HTTPError
from tornado.websocket import WebSocketHandler

from demo.apps import STYLE, AppHandler, DemoApp, Seen, application

NOTES_PAGE = """<!doctype html><html><head><meta charset=utf-8><title>Notes</title>
<script id=config type="application/json">{"baseUrl": "/", "title": "Notes"}</script>
<style>%s</style></head><body><header>Notes <b id=user>…</b></header><main>
<p>A single-page app: its script builds every URL from <code>"baseUrl": "/"</code>.</p>
<form id=login hidden><input id=name value=alice> <button>Sign in</button></form>
<div id=app hidden><p><input id=text> <button id=add>Add note</button>
<button id=logout>Sign out</button></p><ul id=notes></ul>
<p>WebSocket: <span id=ws>connecting</span> <button id=ping>Ping</button>
<span id=pong></span></p><p id=editor></p></div></main>
<script src="/static/notes.js"></script></body></html>
""" % (STYLE % "#7b3fb5")

NOTES_JS = """
const cfg = JSON.parse(document.getElementById("config").textContent);
const base = cfg.baseUrl;
const $ = id => document.getElementById(id);
function xsrf() {
  const m = document.cookie.match(/(?:^|; )xsrf=([^;]*)/);
  return m ? m[1] : "";
}
function api(path, options) {
  const init = Object.assign({headers: {"X-Xsrf-Token": xsrf(),
    "Content-Type": "application/json"}}, options || {});
  return fetch(base + "api/" + path, init).then(r => {
    if (!r.ok) throw new Error(path + ": " + r.status);
    return r.json();
  });
}
function listNotes() {  // XMLHttpRequest, as older app code does
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("GET", base + "api/notes");
    xhr.onload = () => xhr.status === 200 ? resolve(JSON.parse(xhr.responseText))
      : reject(new Error("notes: " + xhr.status));
    xhr.onerror = () => reject(new Error("notes: network"));
    xhr.send();
  }).then(notes => {
    $("notes").innerHTML = "";
    for (const n of notes) {
      const li = document.createElement("li");
      li.textContent = n;
      $("notes").appendChild(li);
    }
    document.body.dataset.notes = String(notes.length);
  });
}
let socket = null;
function connect() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  socket = new WebSocket(scheme + "//" + location.host + base + "api/ws");
  socket.onopen = () => { $("ws").textContent = "open"; };
  socket.onmessage = e => {
    $("pong").textContent = e.data;
    document.body.dataset.pongs = String(Number(document.body.dataset.pongs || 0) + 1);
  };
  socket.onclose = () => { $("ws").textContent = "closed"; };
}
function loadEditor() {  // a lazily loaded chunk, the way bundlers load them
  return new Promise((resolve, reject) => {
    const s = document.createElement("script");
    s.src = base + "static/chunk-editor.js";
    s.onload = resolve;
    s.onerror = () => reject(new Error("chunk"));
    document.head.appendChild(s);
  });
}
function show(user) {
  $("user").textContent = user || "signed out";
  $("login").hidden = !!user;
  $("app").hidden = !user;
  if (!user) return Promise.resolve();
  connect();
  return Promise.all([listNotes(), loadEditor()]);
}
$("login").onsubmit = e => {
  e.preventDefault();
  api("login", {method: "POST", body: JSON.stringify({name: $("name").value})})
    .then(me => show(me.user));
};
$("add").onclick = () => {
  api("notes", {method: "POST", body: JSON.stringify({text: $("text").value})})
    .then(listNotes);
};
$("ping").onclick = () => { socket.send("ping " + Date.now()); };
$("logout").onclick = () => {
  api("logout", {method: "POST"}).then(() => { if (socket) socket.close(); show(null); });
};
api("me").then(me => show(me.user)).then(() => { document.body.dataset.ready = "1"; },
  e => { document.body.dataset.error = String(e); });
"""

CHUNK_JS = 'document.getElementById("editor").textContent = "Editor chunk loaded";'


class NotesPage(AppHandler):
    route = r"/"

    def get(self) -> None:
        self.finish(NOTES_PAGE)

    head = get


class NotesStatic(AppHandler):
    route = r"/static/(.*)"

    def get(self, name: str) -> None:
        body = {"notes.js": NOTES_JS, "chunk-editor.js": CHUNK_JS}.get(name)
        if body is None:
            raise HTTPError(404)
        self.set_header("Content-Type", "application/javascript")
        self.finish(body)


class NotesApi(AppHandler):
    route = r"/api/(\w+)"

    def check_token(self) -> None:
        # The app's own XSRF check: the header its script copied from document.cookie.
        cookie = self.get_cookie("xsrf")
        if not cookie or self.request.headers.get("X-Xsrf-Token") != cookie:
            raise HTTPError(403, "XSRF token missing or wrong")

    def get(self, what: str) -> None:
        user = self.user()
        if what == "me":
            self.finish({"user": user})
        elif what == "notes" and user:
            self.finish(json.dumps(self.app.items))
        else:
            self.send_error(401 if what == "notes" else 404)

    def post(self, what: str) -> None:
        body = json.loads(self.request.body or b"{}")
        if what == "login":
            self.login(str(body.get("name") or "guest"), "/")
            self.set_cookie("xsrf", secrets.token_hex(8), path="/", samesite="Lax")
            self.finish({"user": body.get("name") or "guest"})
            return
        if not self.user():
            self.send_error(401)
            return
        self.check_token()
        if what == "notes":
            self.app.items.append(str(body.get("text", "")))
            self.finish({"ok": True})
        elif what == "logout":
            self.app.sessions.pop(self.get_cookie("sid", ""), None)
            self.clear_cookie("sid", path="/")
            self.clear_cookie("xsrf", path="/")
            self.finish({"ok": True})
        else:
            self.send_error(404)


class NotesSocket(WebSocketHandler):
    route: ClassVar[str] = r"/api/ws"

    def initialize(self, app: DemoApp) -> None:
        self.app = app

    def prepare(self) -> None:
        user = self.app.sessions.get(self.get_cookie("sid", "") or "")
        self.app.log.append(Seen("WS", self.request.path, user))
        if user is None:
            self.set_status(401)
            self.finish()

    def on_message(self, message: str | bytes) -> None:
        user = self.app.sessions.get(self.get_cookie("sid", "") or "")
        self.app.log.append(Seen("WS-MESSAGE", self.request.path, user))
        self.write_message(f"pong for {user}: {message!s}")


def notes_app(app: DemoApp) -> Application:
    return application({"app": app}, NotesPage, NotesStatic, NotesSocket, NotesApi)


__all__ = ["notes_app"]
