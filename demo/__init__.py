"""The built-in demo sites of ``python proxy.py --demo``: loopback backends of the kinds that
real intranet sites are (they are backends, not part of the proxy)."""

from demo.sites import DemoSites, start_demo_sites

__all__ = ["DemoSites", "start_demo_sites"]
