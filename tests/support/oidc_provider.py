"""A real OpenID Connect provider for the tests: npm's oidc-provider, run by node from
tests/support/oidc/provider.mjs on 127.0.0.1, and a browserless driver of its login and
logout pages. Single sign-on must be tested against a provider that speaks the protocol
as deployments meet it, not against a mock of it that agrees with our own reading."""

from __future__ import annotations

import fcntl
import hashlib
import html.parser
import http.cookiejar
import json
import os
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.servers import free_port
from tests.support.tools import IN_CI, require_tool

OIDC_DIR = Path(__file__).parent / "oidc"
LOCK_FILE = OIDC_DIR / "package-lock.json"
# Holds the hash of the package-lock.json that node_modules was installed from: a
# checkout's file times say nothing about which of the two is newer.
STAMP = OIDC_DIR / "node_modules" / ".web_proxy-installed"


def ensure_node_modules() -> None:
    """Install the provider's packages (``npm ci``) unless node_modules already holds
    what package-lock.json pins. Skips without node or npm, except in CI (require_tool)."""
    require_tool("node")
    npm = require_tool("npm")
    wanted = hashlib.sha256(LOCK_FILE.read_bytes()).hexdigest()
    # One installer at a time, should several test processes start together (npm ci
    # reads package-lock.json but never writes it, so it can hold the lock).
    with open(LOCK_FILE, "rb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if STAMP.exists() and STAMP.read_text().strip() == wanted:
            return
        command = [npm, "ci", "--no-audit", "--no-fund"]
        done = subprocess.run(command, cwd=OIDC_DIR, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            message = f"npm ci in {OIDC_DIR} failed:\n{done.stdout}\n{done.stderr}"
            if IN_CI:
                pytest.fail(message)
            pytest.skip(message)
        STAMP.write_text(wanted + "\n")


class OidcProvider:
    """oidc-provider in a node process of its own, on a free port of 127.0.0.1.

    ``clients``: registrations fixed at start, each {client_id, client_secret,
    redirect_uris, post_logout_redirect_uris} and any other client metadata of
    oidc-provider's. ``accounts``: login -> {password, email, name, groups}, a file the
    provider re-reads at every login and claims lookup, so ``set_account`` and
    ``remove_account`` take effect at the next sign-in."""

    def __init__(
        self,
        tmp_dir: str | os.PathLike[str],
        clients: Iterable[Mapping[str, Any]],
        accounts: Mapping[str, Mapping[str, Any]] | None = None,
        id_token_ttl: int = 3600,
        jwks: Mapping[str, Any] | None = None,
    ) -> None:
        self.dir = Path(tmp_dir)
        self.clients = [dict(c) for c in clients]
        self.accounts: dict[str, dict[str, Any]] = {k: dict(v) for k, v in (accounts or {}).items()}
        self.id_token_ttl = id_token_ttl
        self.jwks = jwks
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.accounts_file = self.dir / "oidc-accounts.json"
        self.log_file = self.dir / "oidc-provider.log"

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20) -> OidcProvider:
        ensure_node_modules()
        node = require_tool("node")
        self.port = free_port()
        self._write_accounts()
        config = {
            "port": self.port,
            "issuer": self.issuer,
            "clients": self.clients,
            "accounts_file": str(self.accounts_file),
            "id_token_ttl": self.id_token_ttl,
        }
        if self.jwks is not None:
            config["jwks"] = dict(self.jwks)
        config_file = self.dir / "oidc-config.json"
        config_file.write_text(json.dumps(config))
        # Output to a file: a pipe nobody reads would fill up and stall node.
        command = [node, str(OIDC_DIR / "provider.mjs"), str(config_file)]
        with open(self.log_file, "wb") as log:
            self.proc = subprocess.Popen(command, cwd=OIDC_DIR, stdout=log, stderr=log)
        discovery = f"{self.issuer}/.well-known/openid-configuration"
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"oidc provider exited ({self.proc.returncode}):\n{self.log()}")
            try:
                with urllib.request.urlopen(discovery, timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()  # and say why, with what node printed
                raise RuntimeError(f"oidc provider not serving after {timeout}s:\n{self.log()}")
            time.sleep(0.05)

    def log(self) -> str:
        """What node printed: "ready", warnings, and one line per request."""
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def discovery(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.issuer}/.well-known/openid-configuration") as r:
            return json.load(r)

    def set_account(
        self,
        name: str,
        password: str,
        email: str | None = None,
        groups: Iterable[str] = (),
        **extra: Any,
    ) -> None:
        """Add or replace an account; seen by the provider from the next login or token."""
        account: dict[str, Any] = {"password": password, "groups": list(groups), **extra}
        if email is not None:
            account["email"] = email
        self.accounts[name] = account
        self._write_accounts()

    def remove_account(self, name: str) -> None:
        self.accounts.pop(name, None)
        self._write_accounts()

    def _write_accounts(self) -> None:
        # Whole file or nothing: the provider may read it at any moment.
        partial = self.accounts_file.with_suffix(".tmp")
        partial.write_text(json.dumps(self.accounts))
        os.replace(partial, self.accounts_file)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def __enter__(self) -> OidcProvider:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# A browser's part, without a browser: follow the provider's redirects with a cookie jar,
# fill in its forms, and stop at the first redirect that leaves the provider.


class WrongPassword(AssertionError):
    """The provider answered a login with its form again: it refused the password."""


class ProviderError(AssertionError):
    """The provider showed a page the driver did not expect (an error page, say)."""


@dataclass
class Form:
    action: str = ""
    method: str = "get"
    fields: dict[str, str] = field(default_factory=dict)
    ids: set[str] = field(default_factory=set)


class _Forms(html.parser.HTMLParser):
    """The forms of a page: their action, hidden fields, the ids of their controls."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(a.get("action", ""), a.get("method", "get").lower()))
        elif tag in ("input", "button") and self.forms:
            form = self.forms[-1]
            if "id" in a:
                form.ids.add(a["id"])
            if a.get("type") == "hidden" and "name" in a:
                form.fields[a["name"]] = a.get("value", "")


@dataclass
class Landing:
    """Where a visit ended: a redirect off the provider (``location``), or a page."""

    url: str
    status: int
    location: str | None = None
    body: str = ""

    def forms(self) -> list[Form]:
        parser = _Forms()
        parser.feed(self.body)
        return parser.forms

    @property
    def shows_login_form(self) -> bool:
        return any({"login", "password", "submit"} <= f.ids for f in self.forms())


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # each redirect is the driver's to judge


def _open(jar: http.cookiejar.CookieJar, url: str, form: Mapping[str, str] | None) -> Landing:
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), _NoRedirects)
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    try:
        response = opener.open(url, data, timeout=10)
    except urllib.error.HTTPError as error:
        response = error  # a status the driver reads like any other
    with response:
        body = response.read().decode("utf-8", errors="replace")
        location = response.headers.get("Location")
        return Landing(url, response.status, location and urllib.parse.urljoin(url, location), body)


def visit(
    url: str,
    jar: http.cookiejar.CookieJar,
    form: Mapping[str, str] | None = None,
    max_hops: int = 20,
) -> Landing:
    """GET ``url`` (POST ``form`` to it, if given) and follow redirects while they stay
    on its origin. Ends at a page, or at a redirect elsewhere (not fetched)."""
    landing = _open(jar, url, form)
    origin = urllib.parse.urlsplit(url)[:2]
    for _ in range(max_hops):
        if landing.location is None or urllib.parse.urlsplit(landing.location)[:2] != origin:
            return landing
        landing = _open(jar, landing.location, None)
    raise ProviderError(f"more than {max_hops} redirects from {url}")


def sign_in(
    authorize_url: str, login: str, password: str, jar: http.cookiejar.CookieJar | None = None
) -> str:
    """Sign in as a browser would and return the redirect to the client (with ``code``
    and ``state``), not fetched. Already signed in (same ``jar``): no form, same result."""
    jar = jar if jar is not None else http.cookiejar.CookieJar()
    landing = visit(authorize_url, jar)
    if landing.location is None and landing.shows_login_form:
        form = next(f for f in landing.forms() if "login" in f.ids)
        action = urllib.parse.urljoin(landing.url, form.action)
        fields = {**form.fields, "login": login, "password": password}
        landing = visit(action, jar, fields)
        if landing.location is None and landing.shows_login_form:
            raise WrongPassword(f"{login!r} refused (status {landing.status})")
    if landing.location is None:
        raise ProviderError(f"no redirect to the client: {landing.status} {landing.body[:2000]}")
    return landing.location


def sign_out(end_session_url: str, jar: http.cookiejar.CookieJar) -> str:
    """Open the provider's logout page, confirm it (its form's fields and
    logout=yes), and return where the provider sends the browser afterwards."""
    landing = visit(end_session_url, jar)
    forms = [f for f in landing.forms() if f.method == "post"]
    if landing.location is not None or not forms:
        raise ProviderError(f"no logout form: {landing.status} {landing.body[:2000]}")
    action = urllib.parse.urljoin(landing.url, forms[0].action)
    done = _open(jar, action, {**forms[0].fields, "logout": "yes"})
    if done.location is None:
        raise ProviderError(f"logout not confirmed: {done.status} {done.body[:2000]}")
    return done.location
