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

import pytest

from handlers.config.sites import BackendSite
from tests.browser.cms_session import author_session, write_png
from tests.browser.cms_site import (
    Instance,
    MariaDB,
    require_wordpress,
    start_wordpress,
    stop_with_workers,
)
from tests.browser.cms_tables import (
    PREFIX,
    prefix_counts,
    snapshot_differences,
    table_snapshot,
    unmet_expectations,
)
from tests.support import chromium, require_tool, start_proxy


@pytest.fixture(scope="module")
def cms(tmp_path_factory, loop_thread):
    php = require_tool("php")
    require_wordpress(php)
    root = tmp_path_factory.mktemp("cms")
    db = MariaDB(root)
    sites: list[Instance] = []
    try:
        for name in ("direct", "proxied"):
            sites.append(start_wordpress(php, db, root / name, f"wp_{name}"))
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
                stop_with_workers(site.server)
        db.stop()


def test_a_session_through_the_proxy_stores_what_a_direct_one_stores(cms):
    root, db = cms["root"], cms["db"]
    direct, proxied = cms["direct"], cms["proxied"]
    original = write_png(
        root / "photo.png", f"made at {cms['proxy']}/.site.cms/x, kept as /.site.cms/x"
    )

    direct_steps = author_session(cms["browser"], direct.url, root / "photo.png")
    assert direct_steps == [(name, "ok") for name, _ in direct_steps], direct_steps
    proxied_steps = author_session(cms["browser"], cms["proxy"] + "/.site.cms", root / "photo.png")

    direct_snapshot, proxied_snapshot = table_snapshot(db, direct), table_snapshot(db, proxied)
    assert not unmet_expectations(direct_snapshot), unmet_expectations(direct_snapshot)

    report = []
    if proxied_steps != direct_steps:
        report.append(
            "steps through the proxy: " + "; ".join(f"{n}: {o}" for n, o in proxied_steps)
        )
    prefixes = prefix_counts(db, proxied)
    dumped = len(PREFIX.findall(db.mysqldump(proxied.database)))
    if prefixes or dumped:
        report.append(f"the proxy's prefix in the proxied instance's dump: {dumped} occurrences")
        for where in sorted({where for where, _ in prefixes}):
            report.append(f"  {where}: {prefixes[where, 'occurrences']} occurrence(s) in "
                          f"{prefixes[where, 'rows']} row(s)")  # fmt: skip
    report.extend(unmet_expectations(proxied_snapshot))
    differences = snapshot_differences(direct_snapshot, proxied_snapshot)
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
