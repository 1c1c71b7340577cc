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


def test_every_setting_and_keyword_has_a_row_and_a_help():
    page = doc.render()
    for cls in (Options, BackendSite):
        helps = doc.helps(cls)
        for spec in specs(cls):
            assert f"| `{spec.name}` |" in page, spec.name
            assert helps.get(spec.field), f"{cls.__name__}.{spec.field} has no docstring"
    assert "| `client_body_timeout` |" in page and "| `request_map_max_bytes` |" in page
