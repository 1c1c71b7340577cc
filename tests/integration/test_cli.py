"""proxy.py as users run it: a real process, its command line and its config files."""

import json
import os
import subprocess
import textwrap
import urllib.error
import urllib.request

import pytest

from tests.support import ROOT, spawn_proxy, start_backend


def run_proxy(args):
    return spawn_proxy(args)


def stop(proc):
    proc.terminate()
    try:
        out, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return proc.returncode, out, err


def write_config(tmp_path, body):
    path = tmp_path / "my_settings.py"
    path.write_text(textwrap.dedent(body))
    return str(path)


def test_config_file_from_settings_star(tmp_path, loop_thread):
    backend = start_backend(loop_thread, "cfg")
    path = write_config(
        tmp_path,
        f"""
        from settings import *

        config.is_to_clear_old_cookies = False
        forward_list = {{
            "intranet": BackendSite("intranet", "{backend.url}", "{backend.netloc}", [
                SubsFilterRules(".", r"cfg", "CONFIGURED"),
            ]),
        }}
        """,
    )
    proc, port = run_proxy([f"--config={path}"])
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/.site.intranet/hello?x=1") as resp:
            body = resp.read()
        # The rule ran on the JSON echo: the backend's name "cfg" was replaced.
        assert json.loads(body)["backend"] == "CONFIGURED"
        assert backend.seen[-1].uri == "/hello?x=1"
        # config.is_to_clear_old_cookies = False took effect: switching keeps cookies.
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/.site.intranet/", headers={"Cookie": ".site=old; sid=7"}
        )
        with urllib.request.urlopen(request) as resp:
            assert not [c for c in resp.headers.get_all("Set-Cookie") if "Max-Age=0" in c]
        assert backend.seen[-1].header("Cookie") == "sid=7"
    finally:
        code, _out, err = stop(proc)
    assert code == 0, err
    assert "Traceback" not in err


def test_default_settings_file_loads(tmp_path):
    proc, port = run_proxy([])
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/.proxy/") as resp:
            assert b"/.site.local/" in resp.read()
    finally:
        stop(proc)


@pytest.mark.parametrize(
    "body, expected",
    [
        (
            'from settings import *\nforward_list = {"a": BackendSite("a", "http://x", None, [SubsFilterRules(".", "(", "y")])}\n',
            ["line 2", "invalid regular expression in re_src", "'('"],
        ),
        (
            'from settings import *\nforward_list = {"a": BackendSite("a", "gopher://x", None, [])}\n',
            ["line 2", "site 'a'", "gopher://x", "http:// or https://"],
        ),
        (
            'from settings import *\nforward_list = {"a b": BackendSite("a b", "http://x", None, [])}\n',
            ["line 2", "site 'a b'", "site name"],
        ),
        (
            'from settings import *\nforward_list = {"a": BackendSite("a", "http://10.1.2.3", "10.9.9.9", [])}\n',
            ["line 2", "site 'a'", "'10.9.9.9'", "does not match"],
        ),
        # Every Config value and BackendSite keyword has a type and a range: the line
        # names the setting, the file and line where it was set, the value, and what
        # was expected.
        (
            'from settings import *\nconfig.trusted_proxies = "10.0.0.0/8"\n'
            'forward_list = {"a": BackendSite("a", "http://x")}\n',
            ["line 2", "config.trusted_proxies = '10.0.0.0/8'", "expected a list of addresses"],
        ),
        (
            'from settings import *\nconfig.trusted_proxies = ["10.0.0.0/33"]\n'
            'forward_list = {"a": BackendSite("a", "http://x")}\n',
            ["line 2", "'10.0.0.0/33' is neither"],
        ),
        (
            'from settings import *\n\nconfig.max_body_size = "10G"\n'
            'forward_list = {"a": BackendSite("a", "http://x")}\n',
            ["line 3", "config.max_body_size = '10G'", "expected a whole number"],
        ),
        (
            "from settings import *\nclass Mine(Config):\n    async_http_client_max_clients = 0\n"
            'config = Mine()\nforward_list = {"a": BackendSite("a", "http://x")}\n',
            ["line 3", "async_http_client_max_clients = 0", "from 1 to 10,000"],
        ),
        (
            'from settings import *\nconfig.is_to_clear_old_cookies = "no"\n'
            'forward_list = {"a": BackendSite("a", "http://x")}\n',
            ["line 2", "expected True or False"],
        ),
        (
            'from settings import *\nconfig.LOGGING_LEVEL = "LOUD"\n'
            'forward_list = {"a": BackendSite("a", "http://x")}\n',
            ["line 2", "'LOUD'", "'WARNING'"],
        ),
        (
            'from settings import *\nforward_list = {\n    "a": BackendSite(\n        "a",\n'
            '        "http://x",\n        timeout="30",\n    )\n}\n',
            ["line 6", "site 'a'", "timeout='30'", "seconds"],
        ),
        (
            'from settings import *\nforward_list = {"a": BackendSite("a", "http://x", shim=1)}\n',
            ["line 2", "shim=1", "True or False"],
        ),
        # A misspelt name would otherwise be ignored: it is refused, with the closest.
        (
            "from settings import *\nconfig.rewrite_max_byte = 1024\n"
            'forward_list = {"a": BackendSite("a", "http://x")}\n',
            [
                "line 2",
                "config.rewrite_max_byte is not a setting",
                "did you mean rewrite_max_bytes?",
            ],
        ),
        (
            'from settings import *\nforward_list = {"a": BackendSite("a", "http://x", time_out=5)}\n',
            [
                "line 2",
                "site 'a'",
                "time_out=5 is not a BackendSite keyword",
                "did you mean timeout?",
            ],
        ),
        (
            'from settings import *\nconfig.users = {"alice": "plain-text"}\n'
            'forward_list = {"a": BackendSite("a", "http://x")}\n',
            ["line 2", "not an argon2 hash", "--hash-password"],
        ),
        (
            'from settings import *\nconfig.users = {"alice": "$argon2id$v=19$x"}\n'
            'forward_list = {"a": BackendSite("a", "http://x")}\n',
            ["config.cookie_secret is not set"],
        ),
        (
            'from settings import *\nforward_list = {\n    "a": BackendSite("a", "http://x",'
            ' users=["bob"]),\n}\n',
            ["line 3", "site 'a'", "users", "needs signing in on"],
        ),
        (
            'from settings import *\nforward_list = {"a": BackendSite("a", "http://x",'
            ' deny=["("])}\n',
            ["line 2", "site 'a'", "deny", "not a regular expression"],
        ),
        (
            'from settings import *\nforward_list = {"a": BackendSite("a", "http://x",'
            ' client_allow="10.0.0.0/8")}\n',
            ["line 2", "client_allow='10.0.0.0/8'", "expected a list"],
        ),
        (
            "from settings import *\n\nforward_list = {}\n",
            ["line 3", "forward_list is empty"],
        ),
        ("from settings import *\nforward_list = {\n", ["line 2"]),
        ("from settings import *\nforward_list = undefined_name\n", ["line 2", "NameError"]),
        ("forward_list = {}\n", ["defines no 'config'"]),
    ],
)
def test_bad_config_is_one_clear_message(tmp_path, body, expected):
    path = write_config(tmp_path, body)
    proc, _ = run_proxy([f"--config={path}"])
    _out, err = proc.communicate(timeout=10)
    assert proc.returncode == 2
    assert "Traceback" not in err
    message = [line for line in err.splitlines() if line.strip()]
    assert len(message) == 1, err
    assert message[0].startswith("web_proxy: configuration error:")
    for part in expected:
        assert part in message[0], (part, message[0])


def test_missing_config_file(tmp_path):
    proc, _ = run_proxy([f"--config={tmp_path}/nope.py"])
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 2 and "does not exist" in err and "Traceback" not in err


def test_unknown_option_is_clear(tmp_path):
    proc, _ = run_proxy(["--no-such-option=1"])
    _, err = proc.communicate(timeout=10)
    assert (
        proc.returncode == 2
        and "no-such-option" in err.replace("_", "-")
        and "Traceback" not in err
    )


def test_demo_shows_the_whole_mechanism():
    proc, port = run_proxy(["--demo"])
    base = f"http://127.0.0.1:{port}"
    try:
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        with opener.open(f"{base}/.site.demo/") as resp:
            page = resp.read().decode()
        assert 'src="/.site.demo/static/logo.png"' in page
        assert 'href="/.site.wiki/"' in page
        assert "http://127.0.0.1:" not in page and "//127.0.0.1:" not in page
        # The cookie now carries the site: an unprefixed path reaches it.
        with opener.open(f"{base}/static/logo.png") as resp:
            assert resp.headers["Content-Type"] == "image/png"
            assert resp.read().startswith(b"\x89PNG")
        # The redirect lands on the proxied address.
        with opener.open(f"{base}/.site.demo/old-page") as resp:
            assert resp.geturl() == f"{base}/.site.demo/about"
        # The login form posts through the proxy and the session holds.
        with opener.open(f"{base}/.site.demo/login", data=b"user=ping") as resp:
            assert resp.geturl() == f"{base}/.site.demo/account"
            assert "Welcome back, ping." in resp.read().decode()
    finally:
        code, out, err = stop(proc)
    assert f"{base}/.site.demo/" in out
    assert code == 0


def test_hash_password_prints_an_argon2_hash():
    import subprocess
    import sys

    from argon2 import PasswordHasher

    out = subprocess.run(
        [sys.executable, os.path.join(ROOT, "proxy.py"), "--hash-password"],
        input="correct horse\n",
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    hashed = out.stdout.strip()
    assert hashed.startswith("$argon2id$") and PasswordHasher().verify(hashed, "correct horse")
