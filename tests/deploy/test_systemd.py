"""The systemd units of deploy/systemd/ as systemd-analyze checks them."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support import ROOT, require_tool

ROOT_PATH = Path(ROOT)


def test_systemd_units_verify(tmp_path):
    analyze = require_tool("systemd-analyze")
    for name in ("web_proxy.service", "web_proxy@.service"):
        text = (ROOT_PATH / "deploy" / "systemd" / name).read_text()
        # As installed: the project in /opt/web_proxy; here, this checkout.
        target = tmp_path / (name if "@" not in name else "web_proxy@9001.service")
        target.write_text(text.replace("/opt/web_proxy", str(ROOT_PATH)))
        result = subprocess.run(
            [analyze, "verify", "--man=no", str(target)], capture_output=True, text=True
        )
        problems = [
            line
            for line in (result.stdout + result.stderr).splitlines()
            if str(target) in line or "web_proxy" in line
        ]
        assert result.returncode == 0 and not problems, result.stdout + result.stderr
