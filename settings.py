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
also takes keywords: ``timeout`` (seconds of silence from the backend before a 504),
``connect_timeout``, ``validate_cert`` and ``ca_certs`` (https backends), ``auto_rewrite``
and ``prefix_links`` (both on by default), ``charset`` (for pages that declare none),
``shim`` (the in-page URL shim, on by default), ``description`` (for the site list) and
``knows_proxy`` (for a backend that trusts X-Forwarded-Host, like Django's
USE_X_FORWARDED_HOST).
README.md has the details.
"""

from filters.rules import SubsFilterRules
from handlers.config.sites import BackendSite


class Config:
    """Defaults for every environment."""

    DEBUG = False
    LOGGING_LEVEL = "INFO"
    # Backend cookies are kept per site (a copy under /.site.<name>/ and one for the cookie
    # fallback), so sites never see each other's cookies either way. When the user opens
    # another site, this expires the old site's fallback copies: its session then no
    # longer rides on unprefixed requests, while its tabs opened by prefix stay logged in.
    is_to_clear_old_cookies = True
    # How many backend requests run at once per proxy process; up to upstream_queue more
    # wait for one of them, and past that a request is answered 503 (Retry-After: 5).
    async_http_client_max_clients = 200
    upstream_queue = 1000
    # Text bodies larger than this are passed on unchanged instead of rewritten.
    rewrite_max_bytes = 8 * 1024 * 1024
    # Text request bodies (forms, JSON, XML) up to this size are held whole so that the
    # proxy's URLs in them are mapped back to the backend's (BackendSite map_requests);
    # larger ones are passed on unchanged, with a log line.
    request_map_max_bytes = 8 * 1024 * 1024
    # Request bodies (uploads) larger than this are refused with 413. Files and other
    # bodies that are not mapped stream to the backend as they arrive, never held whole.
    max_body_size = 10 * 1024**3
    # Limits of a request's head: a longer target is answered 414, a larger or fuller
    # header block 431. A client gets client_header_timeout seconds to send its head, and
    # its body may stop arriving for client_body_timeout seconds before it is answered 408.
    max_uri_bytes = 8 * 1024
    max_header_bytes = 32 * 1024
    max_header_count = 100
    client_header_timeout = 60
    client_body_timeout = 60
    # Addresses of proxies in front of this one (nginx) whose X-Forwarded-For,
    # X-Forwarded-Proto, X-Forwarded-Host and X-Real-IP are believed and appended to.
    trusted_proxies = ("127.0.0.1", "::1")
    # Who may come in (README: "Locking the door"). Networks whose clients may use the
    # proxy at all (empty: everyone); and an optional login: user name -> argon2 hash
    # (python proxy.py --hash-password), with a secret to sign sessions, the same on
    # every instance.
    client_allow: tuple[str, ...] = ()
    users: dict[str, str] = {}
    cookie_secret = None
    session_seconds = 8 * 3600
    # SIGTERM stops taking connections and lets requests in flight finish for up to this
    # long (keep it under supervisor's stopwaitsecs, 30 in deploy/). SIGHUP re-reads this
    # file. One access log line per request: "-" is standard error, else a file path
    # (reopened when logrotate moves it), None turns it off; "combined" or "json".
    shutdown_grace_seconds = 25
    access_log = "-"
    access_log_format = "combined"
    # Who may read /.proxy/metrics (Prometheus text format).
    metrics_allow = ("127.0.0.0/8", "::1")


class Development(Config):
    DEBUG = True
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
