"""docs/settings.md is generated from the settings' declarations: it must match them."""

import os

from handlers.config import doc
from handlers.config.backend import BackendSite
from handlers.config.options import Options
from handlers.config.spec import specs

PAGE = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    "docs",
    "settings.md",
)


def test_the_page_matches_the_declarations():
    with open(PAGE, encoding="utf-8") as f:
        written = f.read()
    assert written == doc.render(), (
        "docs/settings.md differs from the declarations in handlers/config/; regenerate it:"
        " python -m handlers.config.doc > docs/settings.md"
    )


def test_every_setting_and_keyword_has_a_row():
    page = doc.render()
    for spec in (*specs(Options), *specs(BackendSite)):
        assert f"| `{spec.name}` |" in page, spec.name
        assert spec.help, spec.name
    assert "| `client_body_timeout` |" in page and "| `request_map_max_bytes` |" in page
