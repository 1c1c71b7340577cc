"""WordPress from Debian, with its real MariaDB, authored in the system Chromium through the
proxy and directly, side by side; then both databases must hold the same thing.

Issue 17: the proxy rewrote the backend's URLs in what the browser received but passed
what the browser sent back unchanged, so a CMS stored the proxy's addresses
(``/.site.cms/...``, ``http://proxy/.site.cms/...``) in its database, where every reader
who reaches the backend directly gets a 404 for them. The same session runs against two
identical WordPress instances, one directly and one through ``/.site.cms/``: log in,
upload an image (multipart), write a post in the block editor with that image and a link
to another post (JSON to the REST API, through the editor's own ``wp.data`` stores),
re-save a post written directly changing only its title, save the General Settings form
unchanged and build a menu with a custom link (form-urlencoded). Then the tables that
hold content must be equal once each instance's own address, ids and times are
normalized, and the proxy's prefix must occur nowhere in the proxied instance's dump.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import struct
import subprocess
import tempfile
import time
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

from handlers.config.sites import BackendSite
from tests.support import IN_CI, chromium, free_port, require_tool, spawn_server, start_proxy

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

# The tables that hold what an author writes, with the columns that identify a row.
TABLES = {
    "wp_posts": ("ID",),
    "wp_postmeta": ("post_id", "meta_key"),
    "wp_options": ("option_name",),
    "wp_terms": ("term_id",),
    "wp_term_taxonomy": ("term_taxonomy_id",),
    "wp_term_relationships": ("object_id", "term_taxonomy_id"),
}
# Row ids that differ with nothing but the order of inserts; they are left out.
SURROGATE_KEYS = {"meta_id", "option_id"}
# Options that change by themselves (caches, time stamps of background checks).
VOLATILE_OPTIONS = re.compile(r"^(_site)?_transient_|^cron$")
PREFIX = re.compile(r"(?:/|%2f|\\u002f)\.site\.", re.IGNORECASE)


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


def _require_wordpress(php: str) -> None:
    """Debian's wordpress and its classic theme, and PHP's MySQL driver."""
    for path in (WORDPRESS / "wp-settings.php", CLASSIC_THEME / "style.css"):
        require_tool(str(path))
    modules = subprocess.run([php, "-m"], capture_output=True, text=True).stdout.split()
    if "mysqli" not in modules:
        message = "PHP's mysqli is not installed (php-mysql)"
        if IN_CI:
            pytest.fail(f"{message} (CI must install it: see .ci/run)")
        pytest.skip(message)


def _wordpress(php: str, db: MariaDB, folder: Path, database: str) -> Instance:
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


@pytest.fixture(scope="module")
def cms(tmp_path_factory, loop_thread):
    php = require_tool("php")
    _require_wordpress(php)
    root = tmp_path_factory.mktemp("cms")
    db = MariaDB(root)
    sites: list[Instance] = []
    try:
        for name in ("direct", "proxied"):
            sites.append(_wordpress(php, db, root / name, f"wp_{name}"))
        direct, proxied = sites
        proxy = start_proxy(loop_thread, {"cms": BackendSite("cms", proxied.url)})
        with chromium() as browser:
            yield {
                "browser": browser,
                "db": db,
                "direct": direct,
                "proxied": proxied,
                "proxy": f"http://127.0.0.1:{proxy.port}",
                "root": root,
            }
    finally:
        for site in sites:
            if site.server is not None:
                _stop_with_workers(site.server)
        db.stop()


def _stop_with_workers(server: subprocess.Popen) -> None:
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


def _png(path: Path, comment: str) -> bytes:
    """A 640x480 PNG (large enough for WordPress to make its smaller sizes) whose tEXt
    chunk holds proxy URLs: an uploaded file must reach the backend byte for byte."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    width, height = 640, 480
    rows = b"".join(
        b"\0" + b"".join(bytes((x * 255 // width, y * 255 // height, 128)) for x in range(width))
        for y in range(height)
    )
    data = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"tEXt", b"Comment\0" + comment.encode())
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )
    path.write_bytes(data)
    return data


EDITOR_READY = """() => window.wp && wp.data && wp.data.select('core/editor')
    && wp.data.select('core/editor').getCurrentPostId()
    && document.querySelector('.block-editor-block-list__layout')"""

# The editor's own stores, as its toolbar and sidebars use them: the link search that the
# link popover runs, the media library's item, blocks made and inserted, then Publish.
WRITE_POST = """async ({title, linkTo, image}) => {
    const {select, dispatch} = wp.data;
    const [target] = await wp.apiFetch({
        path: '/wp/v2/search?type=post&search=' + encodeURIComponent(linkTo)});
    const [media] = await wp.apiFetch({
        path: '/wp/v2/media?context=edit&search=' + encodeURIComponent(image)});
    dispatch('core/block-editor').insertBlocks([
        wp.blocks.createBlock('core/paragraph', {
            content: 'It follows <a href="' + target.url + '">' + target.title + '</a>.'}),
        wp.blocks.createBlock('core/image', {
            id: media.id, url: media.source_url, alt: 'a photo', sizeSlug: 'full',
            linkDestination: 'none'}),
    ]);
    dispatch('core/editor').editPost({title, status: 'publish'});
    await dispatch('core/editor').savePost();
    return select('core/editor').didPostSaveRequestSucceed();
}"""

RETITLE_POST = """async (title) => {
    const {select, dispatch} = wp.data;
    dispatch('core/editor').editPost({title});
    await dispatch('core/editor').savePost();
    return select('core/editor').didPostSaveRequestSucceed();
}"""


def _session(browser, base: str, image: Path) -> list[tuple[str, str]]:
    """One author's session; each step's outcome: "ok", or what went wrong. The steps
    do not stop at a failure: what the others store is compared all the same."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    admin = base + "/wp-admin/"
    outcomes: list[tuple[str, str]] = []

    def submit(selector: str) -> None:
        """Click, and return once the page it leads to has loaded."""
        with page.expect_navigation():
            page.click(selector)

    def login():
        page.goto(base + "/wp-login.php")
        page.fill("#user_login", "admin")
        page.fill("#user_pass", PASSWORD)
        submit("#wp-submit")
        page.wait_for_selector("#wpadminbar")

    def upload():
        page.goto(admin + "media-new.php")
        page.set_input_files("#plupload-upload-ui input[type=file]", str(image))
        done = page.wait_for_selector("#media-items a.edit-attachment, #media-items .error-div")
        if "error-div" in (done.get_attribute("class") or ""):
            return done.inner_text()

    def write_post():
        page.goto(admin + "post-new.php")
        page.wait_for_function(EDITOR_READY)
        saved = page.evaluate(
            WRITE_POST, {"title": "Written here", "linkTo": DIRECT_POST, "image": image.stem}
        )
        return None if saved else "the editor's save failed"

    def retitle_post():
        page.goto(admin + "edit.php")
        submit(f"a.row-title:text-is('{DIRECT_POST}')")
        page.wait_for_function(EDITOR_READY)
        saved = page.evaluate(RETITLE_POST, DIRECT_POST + ", retitled")
        return None if saved else "the editor's save failed"

    def settings():
        page.goto(admin + "options-general.php")
        submit("#submit")
        errors = page.locator(".notice-error p").all_inner_texts()
        if errors or not page.is_visible("#setting-error-settings_updated"):
            return " ".join(errors) or "no 'Settings saved.'"

    def menu():
        # The link as a user copies it from the posts list: an absolute URL in the
        # browser's terms (through the proxy, the proxy's own).
        page.goto(admin + "edit.php")
        row = page.locator(
            "tr", has=page.locator(f"a.row-title:text-is('{DIRECT_POST}, retitled')")
        )
        link = row.locator(".row-actions .view a").evaluate("a => a.href")
        page.goto(admin + "nav-menus.php")
        page.fill("#menu-name", "Main")
        page.check("#locations-primary")
        submit("#save_menu_footer")  # "Create Menu"; it then opens the new menu
        page.wait_for_url(re.compile(r"/nav-menus\.php\?menu=\d+$"))
        page.click("#add-custom-links .accordion-section-title")
        page.fill("#custom-menu-item-url", link)
        page.fill("#custom-menu-item-name", DIRECT_POST)
        page.click("#submit-customlinkdiv")
        page.wait_for_selector("#menu-to-edit li.menu-item")
        # Saved twice: the second time unchanged, every item's URL field going back as
        # the page shows it.
        for _ in range(2):
            submit("#save_menu_footer")
            if not page.is_visible("#message.updated"):
                return " ".join(page.locator("#message").all_inner_texts()) or "not saved"

    for name, step in (
        ("log in", login),
        ("upload an image", upload),
        ("write a post", write_post),
        ("re-save a post written directly", retitle_post),
        ("save the settings unchanged", settings),
        ("add a menu link", menu),
    ):
        try:
            outcomes.append((name, step() or "ok"))
        except Exception as e:  # a step that fails is reported, the next one still runs
            outcomes.append((name, f"{type(e).__name__}: {str(e).splitlines()[0]}"))
    context.close()
    return outcomes


def _ranks(ids) -> dict[str, str]:
    """Each id by its place in insertion order: two instances that created the same rows
    in the same order give them the same names, whatever their auto-increment counters."""
    return {value: f"#{rank}" for rank, value in enumerate(sorted(set(ids), key=int), 1)}


# Where WordPress writes a post's id inside text: block attributes and classes, plain
# permalinks, admin links, and the names of revisions and autosaves.
POST_ID_IN_TEXT = re.compile(
    r"(wp-image-|\"id\":|[?&](?:p|page_id|post|attachment_id)=)(\d+)"
    r"|^(\d+)(?=-(?:revision|autosave)-v\d+$)"
)
POST_ID_META = {"_menu_item_object_id", "_menu_item_menu_item_parent", "_thumbnail_id"}


def _normalized_text(value: str, site_url: str) -> str:
    netloc = site_url.removeprefix("http://")
    for form in (site_url, site_url.replace("/", "\\/"), quote(site_url, safe="")):
        value = value.replace(form, "<site>")
    value = value.replace(netloc, "<netloc>")
    value = re.sub(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d", "<datetime>", value)
    value = re.sub(r"\b1\d{9}(?:\.\d+)?\b", "<timestamp>", value)
    # Upload folders and permalinks carry the date.
    value = re.sub(r"(?<=/)\d{4}((?:\\?/)\d\d){1,2}(?=\\?/)", "<date>", value)
    # PHP's serialize() writes each string's length, which the placeholders changed.
    return re.sub(r'\bs:\d+:"', 's:_:"', value)


def _snapshot(db: MariaDB, site: Instance) -> dict[str, dict[tuple, dict[str, str | None]]]:
    """The content tables, each row under its (normalized) key, each value normalized."""
    tables = {table: db.rows(site.database, table) for table in TABLES}
    posts = _ranks(row["ID"] for row in tables["wp_posts"])
    terms = _ranks(row["term_id"] for row in tables["wp_terms"])
    taxonomies = _ranks(row["term_taxonomy_id"] for row in tables["wp_term_taxonomy"])
    id_columns = {"ID": posts, "post_parent": posts, "post_id": posts, "object_id": posts,
                  "term_id": terms, "parent": terms, "term_taxonomy_id": taxonomies}  # fmt: skip

    def post_id(match: re.Match) -> str:
        if match.group(2):
            return match.group(1) + posts.get(match.group(2), match.group(2))
        return posts.get(match.group(3), match.group(3))

    snapshot: dict[str, dict[tuple, dict[str, str | None]]] = {}
    for table, key_columns in TABLES.items():
        rows: dict[tuple, dict[str, str | None]] = {}
        for row in tables[table]:
            if table == "wp_options" and VOLATILE_OPTIONS.search(row["option_name"] or ""):
                continue
            clean: dict[str, str | None] = {}
            for column, value in row.items():
                if column in SURROGATE_KEYS or value is None:
                    clean[column] = value
                elif column in id_columns:
                    clean[column] = id_columns[column].get(value, value)
                elif table == "wp_postmeta" and row["meta_key"] in POST_ID_META:
                    clean[column] = posts.get(value, value)
                else:
                    clean[column] = _normalized_text(POST_ID_IN_TEXT.sub(post_id, value), site.url)
            for column in SURROGATE_KEYS & clean.keys():
                del clean[column]
            key = tuple(clean[column] for column in key_columns)
            while key in rows:  # a meta key may repeat for one post
                key += ("again",)
            rows[key] = clean
        snapshot[table] = rows
    return snapshot


def _shortened(a: str | None, b: str | None, width: int = 70) -> tuple[str, str]:
    """Both values around their first difference."""
    if a is None or b is None:
        return repr(a), repr(b)
    start = next(
        (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
    )
    start = max(0, start - width // 2)
    return tuple(
        ("…" if start else "")
        + value[start : start + width].replace("\n", "\\n")
        + ("…" if len(value) > start + width else "")
        for value in (a, b)
    )  # type: ignore[return-value]


def _differences(direct: dict, proxied: dict) -> list[str]:
    lines = []
    for table, rows in direct.items():
        for key in sorted(rows.keys() | proxied[table].keys(), key=str):
            name = f"{table}[{', '.join(map(str, key))}]"
            row = rows.get(key) or proxied[table][key]
            if table == "wp_posts":
                name += f" ({row['post_type']} {row['post_title']!r})"
            if key not in proxied[table]:
                lines.append(f"{name}: only in the direct instance")
            elif key not in rows:
                lines.append(f"{name}: only in the proxied instance")
            else:
                for column, value in rows[key].items():
                    other = proxied[table][key].get(column)
                    if value != other:
                        shown = _shortened(value, other)
                        lines.append(
                            f"{name}.{column}:\n    direct:  {shown[0]}\n    proxied: {shown[1]}"
                        )
    return lines


def _unmet_expectations(snapshot: dict) -> list[str]:
    """What the session must have stored, in an instance's own terms: absolute URLs of
    the site itself, as WordPress writes them when authored directly."""
    posts = {row["post_title"]: row for row in snapshot["wp_posts"].values()
             if row["post_type"] == "post"}  # fmt: skip
    meta = {row["meta_key"]: row["meta_value"] for row in snapshot["wp_postmeta"].values()}
    options = {key[0]: row["option_value"] for key, row in snapshot["wp_options"].items()}
    expected = {
        "the new post links to the other": (
            posts.get("Written here", {}).get("post_content"),
            'href="<site>/<date>/written-directly/"',
        ),
        "the new post shows the upload": (
            posts.get("Written here", {}).get("post_content"),
            'src="<site>/wp-content/uploads/<date>/photo.png"',
        ),
        "the re-saved post keeps its links": (
            posts.get(DIRECT_POST + ", retitled", {}).get("post_content"),
            'href="<site>/?page_id=#',
        ),
        "the re-saved post keeps its image": (
            posts.get(DIRECT_POST + ", retitled", {}).get("post_content"),
            'src="<site>/wp-content/uploads/old/logo.png"',
        ),
        "the menu links to the post": (
            meta.get("_menu_item_url"),
            "<site>/<date>/written-directly/",
        ),
        "the site's address": (options.get("siteurl"), "<site>"),
        "the home page's address": (options.get("home"), "<site>"),
    }
    return [f"{what}: no {part!r}" for what, (value, part) in expected.items()
            if part not in (value or "")]  # fmt: skip


def _prefixes(db: MariaDB, site: Instance) -> Counter:
    """Occurrences of the proxy's prefix in every table of the instance, by
    (table.column): (occurrences, rows)."""
    found: Counter = Counter()
    tables = db.sql("SHOW TABLES", site.database).stdout.split()[1:]
    for table in tables:
        for row in db.rows(site.database, table):
            for column, value in row.items():
                count = len(PREFIX.findall(value or ""))
                if count:
                    found[f"{table}.{column}", "occurrences"] += count
                    found[f"{table}.{column}", "rows"] += 1
    return found


def test_a_session_through_the_proxy_stores_what_a_direct_one_stores(cms):
    root, db = cms["root"], cms["db"]
    direct, proxied = cms["direct"], cms["proxied"]
    original = _png(root / "photo.png", f"made at {cms['proxy']}/.site.cms/x, kept as /.site.cms/x")

    direct_steps = _session(cms["browser"], direct.url, root / "photo.png")
    assert direct_steps == [(name, "ok") for name, _ in direct_steps], direct_steps
    proxied_steps = _session(cms["browser"], cms["proxy"] + "/.site.cms", root / "photo.png")

    direct_snapshot, proxied_snapshot = _snapshot(db, direct), _snapshot(db, proxied)
    assert not _unmet_expectations(direct_snapshot), _unmet_expectations(direct_snapshot)

    report = []
    if proxied_steps != direct_steps:
        report.append(
            "steps through the proxy: " + "; ".join(f"{n}: {o}" for n, o in proxied_steps)
        )
    prefixes = _prefixes(db, proxied)
    dumped = len(PREFIX.findall(db.mysqldump(proxied.database)))
    if prefixes or dumped:
        report.append(f"the proxy's prefix in the proxied instance's dump: {dumped} occurrences")
        for where in sorted({where for where, _ in prefixes}):
            report.append(f"  {where}: {prefixes[where, 'occurrences']} occurrence(s) in "
                          f"{prefixes[where, 'rows']} row(s)")  # fmt: skip
    report.extend(_unmet_expectations(proxied_snapshot))
    differences = _differences(direct_snapshot, proxied_snapshot)
    if differences:
        report.append(f"{len(differences)} differences (direct vs proxied):")
        report.extend(differences[:40])
    for site in (direct, proxied):
        stored = [
            p.read_bytes() for p in (site.docroot / "wp-content/uploads").glob("*/*/photo.png")
        ]
        if stored != [original]:
            report.append(f"the upload stored in {site.database} is not the file sent")
    assert not report, "\n".join(report)
