"""An author's session in WordPress, driven in Chromium: log in, upload an image, write
a post in the block editor, re-save another, save the settings, build a menu."""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path

from tests.browser.cms_site import DIRECT_POST, PASSWORD


def write_png(path: Path, comment: str) -> bytes:
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


def author_session(browser, base: str, image: Path) -> list[tuple[str, str]]:
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
