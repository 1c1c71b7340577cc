"""WebDAV through the proxy, judged against the same clients talking to the server directly.

Two stock servers on loopback: WsgiDAV (PyPI) and Apache's mod_dav (Debian's apache2-bin,
a private instance), which unlike WsgiDAV checks the entity tags of tagged If lists. The
clients are the WebDAV conformance suite ``litmus`` and the command-line client
``cadaver`` (Debian packages; .ci/run installs all three), and a scripted session over
plain HTTP. Each runs once directly and once through ``/.site.dav/``; the results must be
the same.
"""

from __future__ import annotations

import contextlib
import http.client
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from handlers.config.sites import BackendSite
from tests.support import IN_CI, free_port, require_tool, start_proxy


def _wsgidav_server(root: Path, port: int):
    try:
        from cheroot import wsgi
        from wsgidav.wsgidav_app import WsgiDAVApp
    except ImportError:
        if IN_CI:
            pytest.fail("wsgidav is not installed (requirements-dev.txt)")
        pytest.skip("wsgidav is not installed")
    config = {
        "host": "127.0.0.1",
        "port": port,
        "provider_mapping": {"/": str(root)},
        "simple_dc": {"user_mapping": {"*": True}},  # anonymous: loopback, this test only
        "http_authenticator": {"domain_controller": None},
        "lock_storage": True,
        "property_manager": True,
        "logging": {"enable": False},
        "verbose": 0,
    }
    return wsgi.Server(("127.0.0.1", port), WsgiDAVApp(config))


APACHE = "/usr/sbin/apache2"
APACHE_MODULES = "/usr/lib/apache2/modules"
APACHE_CONF = """ServerRoot {root}
PidFile {root}/run/httpd.pid
Listen 127.0.0.1:{port}
ServerName 127.0.0.1
LoadModule mpm_event_module {modules}/mod_mpm_event.so
LoadModule authz_core_module {modules}/mod_authz_core.so
LoadModule dav_module {modules}/mod_dav.so
LoadModule dav_fs_module {modules}/mod_dav_fs.so
User www-data
Group www-data
ErrorLog {root}/run/error.log
DAVLockDB {root}/run/davlock
DocumentRoot {root}/dav
<Directory {root}/dav>
  Dav On
  Require all granted
</Directory>
"""


@contextlib.contextmanager
def _apache(port: int):
    """A private Apache with mod_dav, as root hands its files to www-data: in a folder
    that user can reach."""
    binary = require_tool(APACHE)
    root = Path(tempfile.mkdtemp(prefix="web_proxy-apache-"))
    try:
        for sub in ("dav", "run"):
            (root / sub).mkdir()
            (root / sub).chmod(0o777)
        root.chmod(0o755)
        conf = root / "httpd.conf"
        conf.write_text(APACHE_CONF.format(root=root, port=port, modules=APACHE_MODULES))
        server = subprocess.Popen([binary, "-f", str(conf), "-D", "FOREGROUND"])
        try:
            _wait_for(port, server)
            yield root / "dav"
        finally:
            server.terminate()
            server.wait(10)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def _wsgidav(port: int, root: Path):
    server = _wsgidav_server(root, port)
    thread = threading.Thread(target=server.start, daemon=True)
    thread.start()
    try:
        _wait_for(port)
        yield root
    finally:
        server.stop()


def _wait_for(port: int, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if process is not None and process.poll() is not None:
                raise AssertionError(f"the server exited with {process.returncode}") from None
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)


@pytest.fixture(scope="module", params=["wsgidav", "apache"])
def dav(request, tmp_path_factory, loop_thread):
    port = free_port()
    if request.param == "apache":
        server = _apache(port)
    else:
        server = _wsgidav(port, tmp_path_factory.mktemp("davroot"))
    with server as root:
        direct = f"http://127.0.0.1:{port}"
        proxy = start_proxy(loop_thread, {"dav": BackendSite("dav", direct)})
        yield {
            "server": request.param,
            "root": root,
            "direct": direct,
            "proxied": f"http://127.0.0.1:{proxy.port}/.site.dav",
            "proxy": proxy,
        }


def _normalized(text: str, base: str) -> str:
    """A client's transcript without what must differ: the server's URL or path, and
    what differs between any two runs (times, entity tags, lock tokens)."""
    path = base.split("//", 1)[1].split("/", 1)[1] if base.count("/") > 2 else ""
    text = re.sub(r"\x1b\[[0-9;]*m", "", text).replace(base, "SERVER")
    if path:
        text = text.replace(f"/{path}", "")
    for pattern, placeholder in _VARYING:
        text = pattern.sub(placeholder, text)
    return text


# What differs between any two runs against the same server.
_VARYING = [
    # cadaver's listings ("Nov 30 02:59"), not the start of a time with seconds: a
    # property's HTTP date ("30 Nov 2026 02:59:16") gets TIME below.
    (re.compile(r"\b\w{3} +\d+ \d\d:\d\d\b(?!:\d)"), "DATE"),
    (re.compile(r"\d\d:\d\d:\d\d"), "TIME"),
    # Entity tags, quoted in headers and bare in cadaver's property listing
    # ("getetag = 2244710-1796012610-18": inode, mtime and size, so a second apart differ).
    (re.compile(r'"[0-9a-f]+(?:-[0-9a-f]+)+"|(?<=getetag = )[0-9a-f]+(?:-[0-9a-f]+)+'), "ETAG"),
    (re.compile(r"(opaquelocktoken|urn:uuid):[\w-]+"), "TOKEN"),
]


def test_litmus_passes_through_the_proxy_as_it_does_directly(dav, tmp_path):
    litmus = require_tool("litmus")
    runs = {}
    for how in ("direct", "proxied"):
        out = subprocess.run(
            [litmus, dav[how] + "/"],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
        )
        runs[how] = out.stdout + out.stderr
    summaries = {how: re.findall(r"summary for `(\w+)': of (\d+) tests run: (\d+) passed", text)
                 for how, text in runs.items()}  # fmt: skip
    # Every suite ran, and passes through the proxy what it passes directly.
    assert [s[0] for s in summaries["direct"]] == ["basic", "copymove", "props", "locks", "http"]
    assert summaries["proxied"] == summaries["direct"]
    # Test for test, warning for warning: the same transcript.
    assert _normalized(runs["proxied"], dav["proxied"]) == _normalized(
        runs["direct"], dav["direct"]
    )
    passed = sum(int(s[2]) for s in summaries["proxied"])
    assert passed == sum(int(s[1]) for s in summaries["direct"]), runs["proxied"]


CADAVER_SESSION = """ls
mkcol docs
cd docs
put {upload} up.txt
copy up.txt up2.txt
move up2.txt up3.txt
ls
get up3.txt {download}
propget up.txt
lock up.txt
unlock up.txt
rm up.txt
rm up3.txt
cd ..
rmcol docs
quit
"""


def test_cadaver_session_through_the_proxy_as_directly(dav, tmp_path):
    cadaver = require_tool("cadaver")
    upload = tmp_path / "upload.txt"
    upload.write_text("hello over WebDAV\n")
    transcripts = {}
    download = tmp_path / "download.txt"
    script = CADAVER_SESSION.format(upload=upload, download=download)
    for how in ("direct", "proxied"):
        download.unlink(missing_ok=True)
        out = subprocess.run(
            [cadaver, dav[how] + "/"],
            input=script,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
        transcripts[how] = _normalized(out.stdout + out.stderr, dav[how])
        assert download.read_text() == "hello over WebDAV\n"
    assert "succeeded" in transcripts["direct"] and "failed" not in transcripts["direct"]
    assert transcripts["proxied"] == transcripts["direct"]


def _session(base: str) -> list[tuple[str, int, str]]:
    """A client's WebDAV session over plain HTTP; (step, status, detail) for each step.
    ``base`` is the server's URL (the proxy's, with its prefix, or the backend's)."""
    host, _, prefix = base.split("//", 1)[1].partition("/")
    prefix = "/" + prefix if prefix else ""
    steps: list[tuple[str, int, str]] = []

    def call(step, method, path, body=b"", headers=None, detail=lambda r, d: ""):
        conn = http.client.HTTPConnection(host, timeout=20)
        conn.request(method, prefix + path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        steps.append((step, resp.status, detail(resp, data)))
        return resp, data

    def hrefs(resp, data):
        found = re.findall(rb"<(?:\w+:)?href>([^<]*)</", data)
        # Hrefs must name the resources where the client reached them: strip the
        # base's path and compare what is left.
        return " ".join(sorted(h.decode().removeprefix(prefix) for h in found))

    call("mkcol", "MKCOL", "/s/")
    call("put", "PUT", "/s/a%20file.txt", b"one")
    call("copy", "COPY", "/s/a%20file.txt", headers={"Destination": f"{base}/s/b.txt"})
    call("copy onto existing, no overwrite", "COPY", "/s/a%20file.txt",
         headers={"Destination": f"{base}/s/b.txt", "Overwrite": "F"})  # fmt: skip
    call("move", "MOVE", "/s/b.txt", headers={"Destination": f"{base}/s/c.txt"})
    call("propfind depth 1", "PROPFIND", "/s/", headers={"Depth": "1"}, detail=hrefs)
    resp, _ = call("get etag", "HEAD", "/s/c.txt")
    etag = resp.getheader("ETag")
    tagged = f"<{base}/s/c.txt>"
    call("put if wrong etag", "PUT", "/s/c.txt", b"two", {"If": f'{tagged} (["bogus"])'})
    call("put if etag", "PUT", "/s/c.txt", b"two", {"If": f"{tagged} ([{etag}])"})
    lock = (
        b'<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/>'
        b"</D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>"
    )
    resp, _ = call("lock", "LOCK", "/s/c.txt", lock, {"Timeout": "Second-60"})
    token = resp.getheader("Lock-Token", "")
    call("put without the lock", "PUT", "/s/c.txt", b"three")
    call("put with the lock", "PUT", "/s/c.txt", b"three", {"If": f"{tagged} ({token})"})
    call("unlock", "UNLOCK", "/s/c.txt", headers={"Lock-Token": token})
    call("get", "GET", "/s/c.txt", detail=lambda r, d: d.decode())
    call("delete", "DELETE", "/s/")
    call("gone", "PROPFIND", "/s/", headers={"Depth": "0"})
    return steps


def test_scripted_session_same_statuses_and_listings(dav):
    direct = _session(dav["direct"])
    proxied = _session(dav["proxied"])
    assert proxied == direct
    statuses = dict((step, status) for step, status, _ in direct)
    # The session did what it says (so that equality above means something).
    assert statuses["copy"] == 201 and statuses["move"] == 201
    assert statuses["copy onto existing, no overwrite"] == 412
    assert statuses["put if etag"] in (200, 204)
    if dav["server"] == "apache":
        # mod_dav checks the tagged entity tag. Without the tag mapped back to the
        # backend's URL it would take the condition for another resource's, skip it,
        # and let the PUT overwrite: the lost update that If exists to prevent.
        assert statuses["put if wrong etag"] == 412
    assert statuses["put without the lock"] == 423 and statuses["put with the lock"] in (200, 204)
    assert statuses["gone"] == 404
    listing = next(d for s, _, d in direct if s == "propfind depth 1")
    assert listing == "/s/ /s/a%20file.txt /s/c.txt"


def test_fragment_in_the_target_is_refused_and_deletes_nothing(dav):
    keep = dav["root"] / "keep"
    keep.mkdir()
    (keep / "f.txt").write_text("x")
    keep.chmod(0o777)
    answer = dav["proxy"].raw(b"DELETE /.site.dav/keep/#frag HTTP/1.1\r\nHost: p\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert (keep / "f.txt").exists()
