"""What a WordPress instance stores, made comparable: its content tables with each
instance's own address, ids and times normalized, the differences between two, and
where the proxy's prefix occurs."""

from __future__ import annotations

import re
from collections import Counter
from urllib.parse import quote

from tests.browser.cms_site import DIRECT_POST, Instance, MariaDB

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
# The proxy's prefix as a path, percent-encoded or escaped in JSON.
PREFIX = re.compile(r"(?:/|%2f|\\u002f)\.site\.", re.IGNORECASE)


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


def table_snapshot(db: MariaDB, site: Instance) -> dict[str, dict[tuple, dict[str, str | None]]]:
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


def snapshot_differences(direct: dict, proxied: dict) -> list[str]:
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


def unmet_expectations(snapshot: dict) -> list[str]:
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


def prefix_counts(db: MariaDB, site: Instance) -> Counter:
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
