"""web_proxy settings: the sites behind the proxy, and how it behaves.

Edit ``forward_list`` below, then restart the proxy (``supervisorctl restart all`` when it
runs under supervisor). Another file of the same shape can be used instead with
``python proxy.py --config=/path/to/my_settings.py``; such a file starts with
``from settings import *`` and defines its own ``forward_list``.

    forward_list = {
        "name": BackendSite("name", "http://10.1.2.3", "10.1.2.3", [
            # Rewrite page text: SubsFilterRules(uri_regex, source_regex, replacement).
            SubsFilterRules(".", r"http://10\\.1\\.2\\.3", "/.site.name"),
        ]),
    }

``http://proxy/.site.<name>/path`` then shows ``http://10.1.2.3/path``. Links to any
configured backend are rewritten automatically, so most sites need no rules. BackendSite
also takes keywords (``timeout``, ``validate_cert``, ``charset``, ``allow``, ...), and
Config below has a default for every setting: docs/settings.md lists them all, with
their types, ranges and meaning. README.md has the rest.
"""

from filters.rules import SubsFilterRules
from handlers.config.backend import BackendSite
from handlers.config.options import Defaults


class Config(Defaults):
    """Defaults for every environment: each setting of docs/settings.md at its default.
    Set one here (``rewrite_max_bytes = 16 * 1024 * 1024``) or in a Config of your own
    file (``config.users = {...}``); a bad value stops the proxy with one line naming it."""


class Development(Config):
    DEBUG = True  # accepted and ignored: LOGGING_LEVEL sets how much is logged
    LOGGING_LEVEL = "DEBUG"


class Testing(Config):
    LOGGING_LEVEL = "DEBUG"


class Production(Config):
    LOGGING_LEVEL = "WARNING"


config = Production()

# The sites behind the proxy. The key is the name used in URLs: /.site.<key>/...
forward_list = {
    "local": BackendSite("local", "http://127.0.0.1:8080", "127.0.0.1:8080", []),
}

__all__ = [
    "BackendSite",
    "Config",
    "Development",
    "Production",
    "SubsFilterRules",
    "Testing",
    "config",
    "forward_list",
]
