"""Loading the user's settings file and checking it whole: the site table and the options,
or one ConfigError that names the file and line of the bad value."""

from __future__ import annotations

import ast
import importlib.util
import os
import sys
import traceback
from collections.abc import Iterable
from types import ModuleType
from typing import Any

from filters.rules import RuleError
from handlers.config.errors import ConfigError
from handlers.config.options import Options
from handlers.config.sites import build_site_table
from handlers.config.table import Site, SiteTable

# The project's top folder: settings.py is there, beside proxy.py.
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_SETTINGS = os.path.join(ROOT, "settings.py")


def settings_path(path: str | None) -> str:
    """The settings file in use: ``--config``, else the settings.py beside proxy.py."""
    return os.path.abspath(path) if path else DEFAULT_SETTINGS


def load_settings(path: str | None = None) -> ModuleType:
    """Load ``settings.py`` (or the file at ``path``) as a module; a file that fails to
    load becomes one ConfigError naming the file, the line and the reason."""
    path = settings_path(path)
    if not os.path.isfile(path):
        raise ConfigError(f"settings file {path!r} does not exist")
    name = "settings" if path == DEFAULT_SETTINGS else "web_proxy_user_settings"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise ConfigError(exc.msg, path=path, line=exc.lineno) from None
    except Exception as exc:
        # A bad rule (filters/rules.py) or site declaration raised while the file ran:
        # its own message is clear; anything else is named by its type.
        trace = traceback.extract_tb(exc.__traceback__)
        line = next((f.lineno for f in reversed(trace) if f.filename == path), None)
        known = isinstance(exc, RuleError | ConfigError)
        message = str(exc) if known else f"{type(exc).__name__}: {exc}"
        raise ConfigError(message, path=path, line=line) from None
    if name == "settings":
        sys.modules.setdefault("settings", module)
    for required in ("forward_list", "config"):
        if not hasattr(module, required):
            raise ConfigError(
                f"{path} defines no {required!r} (start it with 'from settings import *')"
            )
    return module


def read_config(config_path: str | None, forward_list: Any = None) -> tuple[SiteTable, Options]:
    """The site table and options of the settings file, fully validated (ConfigError
    otherwise, with the file and line when the file says). ``forward_list`` replaces
    the file's sites (the demo's)."""
    settings = load_settings(config_path)
    try:
        # Options first: a bad Config value is reported even when the sites are fine.
        options = Options.from_config(settings.config)
        table = build_site_table(forward_list or settings.forward_list)
        check_sites(table, options)
    except ConfigError as exc:
        if exc.setting is not None or exc.site is not None:
            exc.path = settings_path(config_path)
            exc.line = locate(exc.path, exc.setting, exc.site)
            if exc.line is None:
                exc.path = None  # the value came from elsewhere: say nothing of a file
        raise
    return table, options


def check_sites(table: Iterable[Site], options: Options) -> None:
    """What the sites ask of the options: ``users``, ``groups`` and ``pass_identity`` need
    signing in on; with only the local list, ``users`` must be in it (a provider's or a
    directory's users are not known in advance)."""
    external = options.signin.oidc_issuer is not None or options.signin.ldap_url is not None
    for site in table:
        for keyword, given in (
            ("users", site.users is not None),
            ("groups", site.groups is not None),
            ("pass_identity", site.pass_identity),
        ):
            if given and not options.login:
                raise ConfigError(
                    f"site {site.name!r}: {keyword} needs signing in on (config.users,"
                    " oidc_issuer or ldap_url)",
                    keyword,
                    site.name,
                )
        if site.users is None or external:
            continue
        unknown = sorted(site.users - set(options.users))
        if unknown:
            raise ConfigError(
                f"site {site.name!r}: users: {unknown!r} not in config.users", "users", site.name
            )


def locate(path: str, setting: str | None, site: str | None = None) -> int | None:
    """The line of ``path`` where ``setting`` was last given a value: an assignment
    ``setting = ...`` (in a Config class) or ``config.setting = ...``; for a site's
    keyword (or ``setting`` None), that keyword in the ``BackendSite("site", ...)`` call,
    or the call itself.
    None when the file does not say (the value came from elsewhere)."""
    try:
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
    except (OSError, SyntaxError, ValueError):
        return None
    found: int | None = None
    for node in ast.walk(tree):
        if site is not None:
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", getattr(node.func, "attr", None)) == "BackendSite"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and node.args[0].value == site
            ):
                keyword = next((k for k in node.keywords if setting and k.arg == setting), None)
                return (keyword or node).lineno
            continue
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign | ast.AugAssign):
            targets = [node.target]
        else:
            continue
        for target in targets:
            name = getattr(target, "id", None) or getattr(target, "attr", None)
            if name == setting and (found is None or node.lineno > found):
                found = node.lineno
    return found


__all__ = ["ROOT", "check_sites", "load_settings", "locate", "read_config", "settings_path"]
