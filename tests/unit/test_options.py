"""The options' defaults: one set, the same in Options, in its specs and in the Config
that settings.py ships."""

import settings
from handlers.config.options import SPECS, Options


def test_defaults_agree_everywhere():
    defaults = Options()
    for spec in SPECS:
        assert getattr(defaults, spec.field) == spec.default, spec.name
    # settings.Config is what users start from: an Options read from it is the default.
    assert Options.from_config(settings.Config()) == defaults
