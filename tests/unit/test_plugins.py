from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

K8SREACH = [sys.executable, "-m", "k8sreach"]


def _third_party(tmp_path: Path, module_source: str, entry: str) -> dict[str, str]:
    """Install a package the way pip would leave it: a module and a dist-info on the path."""
    (tmp_path / "acme_checks.py").write_text(textwrap.dedent(module_source))
    dist = tmp_path / "acme_checks-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-checks\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[k8sreach.checks]\n{entry}\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = f"{tmp_path}{os.pathsep}{env.get('PYTHONPATH', '')}"
    return env


def test_builtin_checks_are_listed_with_id_hop_and_description():
    out = subprocess.run([*K8SREACH, "checks"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0
    rows = {line.split()[0]: line.split()[1] for line in out.stdout.splitlines()[2:]}
    assert rows["route-present"] == "client"
    assert rows["dns-resolves"] == "dns"
    assert rows["tcp-connect"] == "service"


def test_third_party_check_registers_through_the_entry_point_group(tmp_path):
    env = _third_party(
        tmp_path,
        """
        from k8sreach.check import Check
        from k8sreach.result import Hop, passed

        class Mtu(Check):
            '''Checks the path MTU to the gateway.'''
            id = "path-mtu"
            hop = Hop.GATEWAY

            def run(self, ctx):
                return passed("1500 bytes")
    """,
        "path-mtu = acme_checks:Mtu",
    )
    out = subprocess.run([*K8SREACH, "checks"], capture_output=True, text=True, env=env, timeout=30)
    assert "path-mtu" in out.stdout
    assert "Checks the path MTU to the gateway." in out.stdout


def test_broken_plugin_is_reported_by_name_and_the_run_goes_on(tmp_path):
    env = _third_party(
        tmp_path, "raise ImportError('needs libfoo')\n", "broken-check = acme_checks:Nope"
    )
    out = subprocess.run(
        [
            *K8SREACH,
            "doctor",
            "mysql-read.default",
            "--dns",
            "127.0.0.1:9",
            "--timeout",
            "0.2",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    doc = json.loads(out.stdout)
    assert doc["load_errors"] == [
        "check 'broken-check' from acme-checks failed to load: needs libfoo"
    ]
    ids = [c["id"] for c in doc["checks"]]
    assert ids[:2] == ["route-present", "dns-resolves"]
    assert ids[-1] == "tcp-connect"
    assert "broken-check" not in ids
    assert "check 'broken-check' from acme-checks failed to load" in out.stderr
