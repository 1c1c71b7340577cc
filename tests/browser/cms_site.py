"""WordPress instances for tests/browser/test_browser_cms.py: Debian's WordPress on a private
MariaDB, each instance in a docroot of its own, served by PHP's built-in server."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import IN_CI, free_port, require_tool, spawn_server

WORDPRESS = Path("/usr/share/wordpress")
CLASSIC_THEME = WORDPRESS / "wp-content/themes/twentytwentyone"
DATA = Path(__file__).parent.parent / "data" / "wordpress"
PASSWORD = "Admin-pass-123"  # set by data/wordpress/setup.php
DIRECT_POST = "Written directly"  # the post setup.php writes, with absolute URLs
WP_CONFIG = """<?php
define('DB_NAME', '{database}');
define('DB_USER', 'root');
define('DB_PASSWORD', '');
define('DB_HOST', 'localhost:{socket}');
define('DB_CHARSET', 'utf8mb4');
define('DB_COLLATE', '');
foreach (['AUTH_KEY', 'SECURE_AUTH_KEY', 'LOGGED_IN_KEY', 'NONCE_KEY',
          'AUTH_SALT', 'SECURE_AUTH_SALT', 'LOGGED_IN_SALT', 'NONCE_SALT'] as $key) {{
    define($key, 'test only, loopback only: ' . $key);
}}
// No background work that would make one instance's tables differ from the other's by
// timing alone, and no tries to reach wordpress.org from a closed network.
define('DISABLE_WP_CRON', true);
define('WP_HTTP_BLOCK_EXTERNAL', true);
define('AUTOMATIC_UPDATER_DISABLED', true);
$table_prefix = 'wp_';
require_once ABSPATH . 'wp-settings.php';
"""


@dataclass
class Instance:
    url: str  # http://127.0.0.1:<port>, the address it believes is its own
    database: str
    docroot: Path
    server: subprocess.Popen | None = None


class MariaDB:
    """A private MariaDB server: its own data directory, a socket only, no network."""

    def __init__(self, folder: Path) -> None:
        self.mariadb = require_tool("mariadb")
        self.dump = require_tool("mariadb-dump")
        install = require_tool("mariadb-install-db")
        server = require_tool("/usr/sbin/mariadbd")
        # A socket's path must fit in 108 bytes; pytest's temporary folders may not.
        self.socket_dir = tempfile.mkdtemp(prefix="mariadb-")
        self.socket = os.path.join(self.socket_dir, "sock")
        datadir = folder / "data"
        as_root = ["--user=root"] if os.geteuid() == 0 else []
        subprocess.run(
            [install, "--no-defaults", f"--datadir={datadir}", "--skip-test-db",
             "--auth-root-authentication-method=normal", *as_root],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        self.log = folder / "mariadb.log"
        self.process = subprocess.Popen(
            [server, "--no-defaults", f"--datadir={datadir}", f"--socket={self.socket}",
             "--skip-networking", f"--pid-file={folder / 'mariadb.pid'}",
             f"--log-error={self.log}", "--skip-log-bin", "--innodb-buffer-pool-size=64M",
             "--innodb-flush-log-at-trx-commit=0", "--character-set-server=utf8mb4", *as_root],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while self.sql("SELECT 1", check=False).returncode != 0:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"mariadbd did not start: {self.log.read_text()}")
            time.sleep(0.2)

    def sql(
        self, statement: str, database: str = "", check: bool = True
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            [self.mariadb, "--no-defaults", f"--socket={self.socket}", "--user=root",
             "--batch", "--default-character-set=utf8mb4", "-e", statement, database],
            check=check, capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    def rows(self, database: str, table: str) -> list[dict[str, str | None]]:
        """Every row of ``table``, by column name. ``--batch`` writes one row a line,
        tab-separated, with tab, newline and backslash escaped, and NULL as ``NULL``."""
        lines = self.sql(f"SELECT * FROM {table}", database).stdout.split("\n")
        columns = lines[0].split("\t")
        return [dict(zip(columns, map(_unescape, line.split("\t")), strict=True))
                for line in lines[1:] if line]  # fmt: skip

    def mysqldump(self, database: str) -> str:
        return subprocess.run(
            [self.dump, "--no-defaults", f"--socket={self.socket}", "--user=root",
             "--skip-extended-insert", "--default-character-set=utf8mb4", database],
            check=True, capture_output=True, text=True, timeout=60,
        ).stdout  # fmt: skip

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.socket_dir, ignore_errors=True)


def _unescape(field: str) -> str | None:
    if field == "NULL":
        return None
    escapes = {"n": "\n", "t": "\t", "0": "\0", "\\": "\\"}
    return re.sub(r"\\(.)", lambda m: escapes.get(m.group(1), m.group(0)), field)


def require_wordpress(php: str) -> None:
    """Debian's wordpress and its classic theme, and PHP's MySQL driver."""
    for path in (WORDPRESS / "wp-settings.php", CLASSIC_THEME / "style.css"):
        require_tool(str(path))
    modules = subprocess.run([php, "-m"], capture_output=True, text=True).stdout.split()
    if "mysqli" not in modules:
        message = "PHP's mysqli is not installed (php-mysql)"
        if IN_CI:
            pytest.fail(f"{message} (CI must install it: see .ci/run)")
        pytest.skip(message)


def start_wordpress(php: str, db: MariaDB, folder: Path, database: str) -> Instance:
    """A WordPress of its own: a docroot of symlinks to Debian's files with its own
    wp-config.php and a writable wp-content, installed into an empty database and served
    by PHP's built-in server."""
    site = Instance(f"http://127.0.0.1:{free_port()}", database, folder / "docroot")
    db.sql(f"CREATE DATABASE {database} CHARACTER SET utf8mb4")
    site.docroot.mkdir(parents=True)
    for entry in WORDPRESS.iterdir():
        if entry.name not in ("wp-config.php", "wp-content", ".htaccess"):
            (site.docroot / entry.name).symlink_to(entry)
    content = site.docroot / "wp-content"
    (content / "uploads").mkdir(parents=True)
    for name in ("themes", "plugins"):
        (content / name).symlink_to(WORDPRESS / "wp-content" / name)
    (site.docroot / "wp-config.php").write_text(
        WP_CONFIG.format(database=database, socket=db.socket)
    )
    setup = subprocess.run(
        [php, str(DATA / "setup.php"), str(site.docroot), site.url],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert setup.returncode == 0, f"WordPress's setup failed: {setup.stdout}{setup.stderr}"
    site.server = spawn_server(
        [php, "-d", "display_errors=0", "-d", "log_errors=1", "-S",
         site.url.removeprefix("http://"), "-t", str(site.docroot), str(DATA / "router.php")],
        site.url + "/wp-login.php",
        folder / "php.log",
        # The block editor loads dozens of scripts at once: serve them in parallel.
        env={**os.environ, "PHP_CLI_SERVER_WORKERS": "4"},
    )  # fmt: skip
    return site


def stop_with_workers(server: subprocess.Popen) -> None:
    """PHP's built-in server leaves its PHP_CLI_SERVER_WORKERS running when it is told
    to stop, so each of them is stopped too, by its pid."""
    workers = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # pid (comm) state ppid ...; comm may hold spaces, so split after its ")".
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == server.pid:
            workers.append(int(stat.parent.name))
    server.terminate()
    server.wait(10)
    for pid in workers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
