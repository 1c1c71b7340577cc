"""The options: declared once (handlers/config/options.py), so the defaults that Options,
settings.Config and the front door's limits use are one set, and every value is checked
by its declaration."""

import os
import subprocess
import sys
import textwrap

import pytest

import settings
from handlers.config.backend import BackendSite
from handlers.config.errors import ConfigError
from handlers.config.load import read_config
from handlers.config.options import Defaults, Options
from handlers.config.spec import specs
from handlers.door.frontdoor import Limits

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_config_starts_from_the_declared_defaults():
    defaults = Options()
    for spec in specs(Options):
        assert getattr(defaults, spec.field) == spec.default, spec.name
        assert getattr(settings.Config, spec.name) == spec.default, spec.name
    # settings.Config is what users start from: an Options read from it is the default.
    assert Options.from_config(settings.Config()) == defaults
    assert Limits.of(defaults) == (8 * 1024, 32 * 1024, 100)


def test_a_mutable_default_is_not_shared():
    assert Options().users is not Options().users
    assert Defaults.users == {} and Defaults.users is not Options().users


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("max_body_size", "10G", "config.max_body_size = '10G': expected a whole number"),
        ("async_http_client_max_clients", 0, "from 1 to 10,000"),
        ("client_body_timeout", 0, "a number of seconds above 0, at most 3600"),
        ("trusted_proxies", "10.0.0.0/8", "expected a list of addresses"),
        ("trusted_proxies", ["10.0.0.0/33"], "'10.0.0.0/33' is neither"),
        ("access_log_format", "xml", "one of 'combined', 'json'"),
        ("LOGGING_LEVEL", "LOUD", "'WARNING'"),
        ("DEBUG", "yes", "True or False"),
        ("users", {"alice": "plain"}, "the hash of 'alice' is not an argon2 hash"),
    ],
)
def test_a_bad_value_names_the_setting_and_what_is_expected(name, value, message):
    config = settings.Config()
    setattr(config, name, value)
    with pytest.raises(ConfigError) as info:
        Options.from_config(config)
    assert message in str(info.value)
    assert info.value.setting == name


def test_values_are_normalised():
    config = settings.Config()
    config.LOGGING_LEVEL = "debug"
    config.client_header_timeout = 5
    options = Options.from_config(config)
    assert options.logging_level == "DEBUG"
    assert options.client_header_timeout == 5.0 and isinstance(options.client_header_timeout, float)


@pytest.mark.parametrize(
    "name, suggestion",
    [
        ("rewrite_max_byte", "did you mean rewrite_max_bytes?"),
        ("max_clients", "did you mean async_http_client_max_clients?"),
        ("logging_level", "did you mean LOGGING_LEVEL?"),
        ("colour", "docs/settings.md lists them"),
    ],
)
def test_a_name_that_no_setting_declares_is_refused(name, suggestion):
    config = settings.Config()
    setattr(config, name, 1)
    with pytest.raises(ConfigError) as info:
        Options.from_config(config)
    assert str(info.value).startswith(f"config.{name} is not a setting")
    assert suggestion in str(info.value)
    assert info.value.setting == name


def test_a_misspelt_class_attribute_is_refused_and_the_users_own_names_are_not():
    class Mine(settings.Config):
        SECRET_KEY = "from the original's settings"  # capitals: the user's own
        _base = 4 * 1024  # private: the user's own
        rewrite_max_bytes = _base * 1024

        def helper(self) -> int:
            return 1

        @property
        def computed(self) -> int:
            return 2

    assert Options.from_config(Mine()).rewrite_max_bytes == 4 * 1024 * 1024

    class Typo(Mine):
        sesion_seconds = 60

    with pytest.raises(ConfigError) as info:
        Options.from_config(Typo())
    assert "config.sesion_seconds is not a setting; did you mean session_seconds?" in str(
        info.value
    )


def test_a_misspelt_name_is_found_in_the_file(tmp_path):
    path = tmp_path / "mine.py"
    path.write_text(
        textwrap.dedent(
            """\
            from settings import *

            HELPER, lower_helper = 3, 4  # names of the file, not of the config
            config = Production()  # its own: settings.config stays as it is
            config.rewrite_max_byte = 5
            forward_list = {"a": BackendSite("a", "http://x")}
            """
        )
    )
    with pytest.raises(ConfigError) as info:
        read_config(str(path))
    assert (info.value.path, info.value.line) == (str(path), 5)
    assert str(info.value) == (
        f"{path}, line 5: config.rewrite_max_byte is not a setting; did you mean rewrite_max_bytes?"
    )


def test_a_misspelt_site_keyword_is_refused():
    with pytest.raises(ConfigError) as info:
        BackendSite("a", "http://x", time_out=5)  # type: ignore[call-arg]
    assert str(info.value) == (
        "site 'a': time_out=5 is not a BackendSite keyword; did you mean timeout?"
    )
    assert (info.value.setting, info.value.site) == ("time_out", "a")


def test_import_settings_loads_only_what_declares_sites():
    heavy = ("tornado", "pycurl", "argon2", "brotli", "rjsmin")
    code = f"import sys, settings\nprint(','.join(m for m in {heavy!r} if m in sys.modules))\n"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""
