"""The command line's answers to bad input and hostile plugins (no network: loopback only)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.unit.test_plugins import _third_party

K8SREACH = [sys.executable, "-m", "k8sreach"]
LOOPBACK_DNS = ["--dns", "127.0.0.1:9", "--timeout", "0.3"]


def _run(*args: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([*K8SREACH, *args], capture_output=True, text=True, timeout=60, env=env)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dns", "junk.example"], "--dns: DNS server 'junk.example' is not an IP address"),
        (["--dns", "127.0.0.1:²"], "the port must be a number from 1 to 65535"),
        (["--timeout", "5", "--deadline", "1"], "--deadline 1 must be longer than --timeout 5"),
        (["--bird-socket", "-delete"], "the BIRD socket '-delete' must be an absolute path"),
        (["--kube-proxy-path", "kube-proxy"], "must be an absolute path"),
        (["--ssh", "-oProxyCommand=x"], "is not an ssh destination"),
        (["--ssh", "gw", "--ssh-option", "BatchMode=no"], "ssh option BatchMode cannot be set"),
        (["--cluster-domain", ""], "--cluster-domain:"),
        (["--config", ""], "--config needs a file name"),
    ],
)
def test_bad_options_exit_2_with_one_line(args, message):
    out = _run("doctor", "mysql-read.default:3306", *args)
    assert out.returncode == 2, out.stderr
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert message in lines[0]


def test_config_with_a_misspelt_top_level_key_is_refused(tmp_path):
    cfg = tmp_path / "k.toml"
    cfg.write_text('defualt-profile = "prod"\n[profiles.prod]\ntimeout = 1\n')
    out = _run("doctor", "a.b", "--config", str(cfg))
    assert out.returncode == 2
    assert "unknown top-level key(s) defualt-profile" in out.stderr


def test_config_timeout_true_is_not_one_second(tmp_path):
    cfg = tmp_path / "k.toml"
    cfg.write_text("[profiles.p]\ntimeout = true\n")
    out = _run("doctor", "a.b", "--config", str(cfg), "--profile", "p")
    assert out.returncode == 2
    assert "timeout True is not a number of seconds" in out.stderr


def test_no_arguments_prints_help_and_exits_0():
    out = _run()
    assert out.returncode == 0
    assert "Usage: k8sreach" in out.stdout
    assert "doctor" in out.stdout


def test_usage_errors_stay_one_line_with_debug():
    out = _run("doctor", "Bad.Name", "--debug")
    assert out.returncode == 2
    assert "Traceback" not in out.stderr


def test_a_printing_plugin_cannot_break_the_json_document(tmp_path):
    env = _third_party(
        tmp_path,
        """
        from k8sreach.check import Check
        from k8sreach.result import Hop, passed

        print("hello from import")

        class Noisy(Check):
            '''Prints.'''
            id = "noisy"
            hop = Hop.CLIENT

            def run(self, ctx):
                print("hello from run")
                return passed("fine")
    """,
        "noisy = acme_checks:Noisy",
    )
    out = _run("doctor", "mysql-read.default:3306", *LOOPBACK_DNS, "-o", "json", env=env)
    doc = json.loads(out.stdout)
    assert "noisy" in [c["id"] for c in doc["checks"]]
    assert "hello from import" in out.stderr
    assert "hello from run" in out.stderr


def test_a_third_party_check_cannot_replace_a_builtin(tmp_path):
    env = _third_party(
        tmp_path,
        """
        from k8sreach.check import Check
        from k8sreach.result import Hop, passed

        class Fake(Check):
            '''Pretends.'''
            id = "route-present"
            hop = Hop.CLIENT

            def run(self, ctx):
                return passed("all good, trust me")
    """,
        "route-present = acme_checks:Fake",
    )
    out = _run("doctor", "mysql-read.default:3306", *LOOPBACK_DNS, "-o", "json", env=env)
    doc = json.loads(out.stdout)
    route = next(c for c in doc["checks"] if c["id"] == "route-present")
    assert route["summary"] != "all good, trust me"
    assert any("check 'route-present' from acme-checks is ignored" in e for e in doc["load_errors"])


def test_a_bad_key_in_a_profile_not_in_use_is_reported(tmp_path):
    cfg = tmp_path / "k.toml"
    cfg.write_text('default-profile = "a"\n[profiles.a]\ntimeout = 1\n[profiles.b]\ntimout = 1\n')
    out = _run("doctor", "a.b", "--config", str(cfg))
    assert out.returncode == 2
    assert "profile 'b' has unknown key 'timout'" in out.stderr


def test_a_config_without_a_chosen_profile_warns(tmp_path):
    cfg = tmp_path / "k.toml"
    cfg.write_text("[profiles.prod]\ntimeout = 0.3\n")
    out = _run("doctor", "a.b:80", "--config", str(cfg), *LOOPBACK_DNS, "-o", "json")
    assert "has profiles (prod) but none is used" in out.stderr
    json.loads(out.stdout)


def test_a_missing_file_named_by_k8sreach_config_is_an_error(tmp_path):
    import os

    env = dict(os.environ, K8SREACH_CONFIG=str(tmp_path / "missing.toml"))
    out = _run("doctor", "a.b", env=env)
    assert out.returncode == 2
    assert "does not exist" in out.stderr
