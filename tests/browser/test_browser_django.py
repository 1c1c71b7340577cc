"""A stock Django admin (Django from PyPI, default CsrfViewMiddleware, no trusted-origin
settings) through the proxy, in the system Chromium, beside the same steps direct.

Django checks every POST's Origin against the host it serves. Through the proxy the
browser's Origin names the proxy, so the proxy must say what a direct client would have
said (handlers/mapping/urlmap.py). A second Django that trusts X-Forwarded-Host
(USE_X_FORWARDED_HOST) takes the proxy's host for its own: for it the site is declared
``knows_proxy=True``, and it must work too, while without that switch it refuses.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from handlers.config.sites import BackendSite
from tests.support import IN_CI, chromium, free_port, spawn_server, start_proxy

SETTINGS = """
from pathlib import Path
SECRET_KEY = "test-only, loopback only"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1"]
USE_X_FORWARDED_HOST = {forwarded}
INSTALLED_APPS = [
    "django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes",
    "django.contrib.sessions", "django.contrib.messages", "django.contrib.staticfiles",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = "urls"
TEMPLATES = [{{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "APP_DIRS": True,
    "OPTIONS": {{"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]}},
}}]
DATABASES = {{"default": {{"ENGINE": "django.db.backends.sqlite3",
                           "NAME": Path(__file__).parent / "db.sqlite3"}}}}
STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
"""

URLS = """
import json

from django.contrib import admin
from django.http import HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import ensure_csrf_cookie


def echo(request):  # CSRF-protected, as every POST view is by default
    return JsonResponse({"method": request.method, "user": request.user.username})


@ensure_csrf_cookie
def notes_page(request):  # a page whose script posts JSON, with the token from the cookie
    return HttpResponse("<!doctype html><html><head><title>Notes</title></head><body></body></html>")


def notes(request):  # a JSON API, CSRF-protected like echo
    return JsonResponse({"body": request.body.decode(), "type": request.content_type,
                         "note": json.loads(request.body)})


urlpatterns = [
    path("admin/", admin.site.urls), path("echo/", echo),
    path("notes/", notes_page), path("api/notes/", notes),
]
"""


def _django_server(folder: Path, forwarded: bool) -> tuple[subprocess.Popen, str]:
    folder.mkdir()
    (folder / "settings.py").write_text(SETTINGS.format(forwarded=forwarded))
    (folder / "urls.py").write_text(textwrap.dedent(URLS))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "settings",
        "PYTHONPATH": str(folder),
        "DJANGO_SUPERUSER_PASSWORD": "s3cret-pass",
    }
    manage = [sys.executable, "-m", "django"]
    for args in (["migrate", "-v0"], ["createsuperuser", "--noinput", "--username=admin",
                                      "--email=admin@example.com"]):  # fmt: skip
        subprocess.run([*manage, *args], env=env, cwd=folder, check=True, timeout=120)
    url = f"http://127.0.0.1:{free_port()}"
    server = spawn_server(
        [*manage, "runserver", "--noreload", url.removeprefix("http://")],
        url + "/admin/login/",
        folder / "server.log",
        env=env,
        cwd=folder,
    )
    return server, url


@pytest.fixture(scope="module")
def django(tmp_path_factory, loop_thread):
    try:
        import django  # noqa: F401
    except ImportError:
        if IN_CI:
            pytest.fail("django is not installed (requirements-dev.txt)")
        pytest.skip("django is not installed")
    root = tmp_path_factory.mktemp("django")
    servers = []
    try:
        plain, plain_url = _django_server(root / "plain", forwarded=False)
        servers.append(plain)
        forwarded, forwarded_url = _django_server(root / "forwarded", forwarded=True)
        servers.append(forwarded)
        sites = {
            "django": BackendSite("django", plain_url),
            "fwd": BackendSite("fwd", forwarded_url, knows_proxy=True),
            # The same forwarded-host Django, declared without the switch.
            "fwd-undeclared": BackendSite("fwd-undeclared", forwarded_url),
        }
        proxy = start_proxy(loop_thread, sites)
        with chromium() as browser:
            yield {
                "browser": browser,
                "direct": plain_url,
                "proxy": f"http://127.0.0.1:{proxy.port}",
            }
    finally:
        for server in servers:
            server.terminate()
            server.wait(10)


def _admin_steps(browser, base: str) -> list[tuple[str, bool]]:
    """Log in, add, edit and delete a group, POST from a script, log out. Each step:
    (name, whether it did what it does directly); after a failed step the rest are
    counted as failed without being tried."""
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(10_000)
    steps: list[tuple[str, bool]] = []

    def step(name: str, check) -> None:
        if steps and not steps[-1][1]:
            steps.append((name, False))  # each step needs the one before
            return
        try:
            steps.append((name, bool(check())))
        except Exception:
            steps.append((name, False))

    def login():
        page.goto(base + "/admin/")
        page.fill("#id_username", "admin")
        page.fill("#id_password", "s3cret-pass")
        page.click("input[type=submit]")
        return page.is_visible("text=Site administration")

    def add():
        page.goto(base + "/admin/auth/group/add/")
        page.fill("#id_name", "editors")
        page.click("input[name=_save]")
        return "was added successfully" in page.inner_text(".messagelist")

    def edit():
        page.click("#result_list a:text-is('editors')")
        page.fill("#id_name", "writers")
        page.click("input[name=_save]")
        return "was changed successfully" in page.inner_text(".messagelist")

    def delete():
        page.click("#result_list a:text-is('writers')")
        page.click("a.deletelink")
        page.click("input[type=submit]")
        return "was deleted successfully" in page.inner_text(".messagelist")

    def script_post():
        # A page's own script, as Django's docs show it: the token from the cookie.
        answer = page.evaluate(
            """async () => {
                const token = document.cookie.match(/csrftoken=([^;]+)/)[1];
                const r = await fetch("/echo/", {method: "POST",
                                                 headers: {"X-CSRFToken": token}});
                return r.ok ? (await r.json()).user : "HTTP " + r.status;
            }"""
        )
        return answer == "admin"

    def logout():
        page.click("#logout-form button")
        return page.is_visible("text=Logged out")

    for name, check in (
        ("login", login),
        ("add", add),
        ("edit", edit),
        ("delete", delete),
        ("script POST", script_post),
        ("logout", logout),
    ):
        step(name, check)
    context.close()
    return steps


def test_admin_through_the_prefix_as_directly(django):
    direct = _admin_steps(django["browser"], django["direct"])
    assert direct == [(name, True) for name, _ in direct]
    assert _admin_steps(django["browser"], django["proxy"] + "/.site.django") == direct


def test_a_backend_that_knows_its_proxy(django):
    """USE_X_FORWARDED_HOST: Django takes the proxy's host for its own and expects the
    proxy's Origin; declared knows_proxy=True, the site works, and undeclared it does
    not (its POSTs fail the Origin check)."""
    declared = _admin_steps(django["browser"], django["proxy"] + "/.site.fwd")
    assert declared == [(name, True) for name, _ in declared]
    undeclared = dict(_admin_steps(django["browser"], django["proxy"] + "/.site.fwd-undeclared"))
    assert undeclared["login"] is False


# Django's documented AJAX pattern ("Setting the token on the AJAX request"): a Request
# object made with mode "same-origin", the token in X-CSRFToken, and here a JSON body.
# The same request with a wrong token shows that the check is on.
AJAX = """async () => {
  const token = document.cookie.match(/csrftoken=([^;]+)/)[1];
  const body = JSON.stringify({title: "\u00dcn\u00efcode \u2713", tags: ["a", "b"], n: 1});
  const post = t => fetch(new Request("/api/notes/", {
    method: "POST", mode: "same-origin",
    headers: {"X-CSRFToken": t, "Content-Type": "application/json"}, body}));
  try {
    const r = await post(token), wrong = await post(token.replace(/./, c => c === "a" ? "b" : "a"));
    return {status: r.status, answer: r.ok ? await r.json() : null, sent: body,
            wrongToken: wrong.status};
  } catch (e) {
    return {error: String(e)};
  }
}"""


def _ajax(browser, base: str) -> dict:
    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_default_timeout(10_000)
        page.goto(base + "/notes/")
        return page.evaluate(AJAX)
    finally:
        context.close()


def test_ajax_post_with_a_request_object_as_directly(django):
    """fetch(new Request(...)) with a JSON body failed through the shim, "TypeError:
    Failed to fetch", and never reached the proxy."""
    direct = _ajax(django["browser"], django["direct"])
    assert direct == {
        "status": 200,
        "answer": {
            "body": direct["sent"],
            "type": "application/json",
            "note": {"title": "Ünïcode ✓", "tags": ["a", "b"], "n": 1},
        },
        "sent": direct["sent"],
        "wrongToken": 403,
    }
    assert _ajax(django["browser"], django["proxy"] + "/.site.django") == direct
