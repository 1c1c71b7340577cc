"""The proxy's handlers, in rooms along a request's path (docs/request-path.md):

- ``config``: the settings and the site table, declared and checked once;
- ``door``: the front door, who may come in, and which site a request names;
- ``mapping``: the one URL mapping, both ways, for headers, cookies and the in-page shim;
- ``relay``: the handler that answers a proxied request and the relay that carries it;
- ``upstream``: the HTTP client that talks to backends;
- ``ops``: what a process reports and how it runs (metrics, access log, processes).

``handlers.app`` builds the application from them. Importing this package does nothing.
"""
