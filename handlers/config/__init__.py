"""Configuration: each setting declared once, the site table, and their checks.

- ``spec``: ``setting()``, the declaration of one setting, and ``specs()``, which reads
  them back (name, type, default, range, help, check);
- ``options``: the proxy's settings (``Options``, and ``Defaults`` for settings.Config);
- ``backend``: a site's declaration (``BackendSite``) and its keywords;
- ``values``: the kinds of value beyond numbers and flags (networks, regexes, users...);
- ``sites`` and ``table``: the declarations checked into the ``SiteTable``;
- ``load``: the user's settings file read and checked whole;
- ``errors``: ``ConfigError``, the one configuration error, with the file and line;
- ``doc``: docs/settings.md written from the declarations.
"""
