"""`k8sreach demo`: build the lab, diagnose the healthy path and a few faults, tear it down."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass

import click

from k8sreach.errors import ToolError


@dataclass(frozen=True)
class Scenario:
    fault: str | None
    title: str
    first_failure: str | None


SCENARIOS = (
    Scenario(None, "healthy path", None),
    Scenario("client-route-removed", "the client's static route is gone", "route-present"),
    Scenario("dns-proxy-stopped", "the DNS proxy is stopped", "dns-resolves"),
    Scenario(
        "no-endpoints-reject",
        "the Service has no endpoints (kube-proxy REJECT)",
        "kube-proxy-rules",
    ),
    Scenario("dnat-removed", "kube-proxy's DNAT rule is missing", "kube-proxy-rules"),
    Scenario("pod-listener-stopped", "the pod's process is not listening", "tcp-connect"),
    Scenario("forward-policy-drop", "the gateway's FORWARD policy is DROP", "gateway-forwarding"),
    Scenario("bgp-peer-stopped", "the node stopped its BGP session", "bgp-peer-established"),
    Scenario(
        "pod-route-not-exported",
        "BGP is up but the pod routes are not exported",
        "bgp-peer-established",
    ),
    Scenario(
        "kube-proxy-segfault", "the gateway's kube-proxy binary is corrupt", "kube-proxy-binary"
    ),
)


def doctor_argv(lab: object, *extra: str, ssh: bool = True, checksum: bool = True) -> list[str]:
    """The doctor command line a client in the lab runs, wrapped to run in its namespace."""
    argv = [
        sys.executable,
        "-m",
        "k8sreach",
        "doctor",
        f"{lab.service}.{lab.namespace}",  # type: ignore[attr-defined]
        "-p",
        str(lab.service_port),  # type: ignore[attr-defined]
        "--dns",
        lab.dns_proxy_ip,  # type: ignore[attr-defined]
        "--gateway",
        lab.gateway_ip,  # type: ignore[attr-defined]
        "--service-cidr",
        lab.service_cidr,  # type: ignore[attr-defined]
        "--pod-cidr",
        lab.pod_cidr,  # type: ignore[attr-defined]
    ]
    if ssh:
        argv += ["--ssh", lab.ssh_dest, "--ssh-identity", lab.ssh_identity]  # type: ignore[attr-defined]
        for key, value in lab.ssh_options.items():  # type: ignore[attr-defined]
            argv += ["--ssh-option", f"{key}={value}"]
        if checksum:
            argv += ["--kube-proxy-sha256", lab.kube_proxy_sha256]  # type: ignore[attr-defined]
    return lab.client_argv([*argv, *extra])  # type: ignore[attr-defined]


def _preflight() -> None:
    if not sys.platform.startswith("linux"):
        raise ToolError("the demo builds Linux network namespaces; run it on Linux")
    if os.geteuid() != 0:
        raise ToolError("the demo builds network namespaces and needs root: sudo k8sreach demo")
    missing = [
        t
        for t in ("ip", "iptables", "bird", "birdc", "dnsmasq", "sshd", "gcc")
        if shutil.which(t) is None and not os.path.exists(f"/usr/sbin/{t}")
    ]
    if missing:
        raise ToolError(
            f"the demo needs {', '.join(missing)}: apt-get install iproute2 iptables bird2 "
            "dnsmasq-base openssh-server openssh-client gcc"
        )


def run_demo(keep_going: bool = False) -> int:
    """Return 0 when every scenario's first failure is the expected one."""
    _preflight()
    from k8sreach.lab import Lab, LabError

    click.echo("Building the lab (client, gateway, DNS proxy, node, pods) ...")
    mismatches = 0
    try:
        with Lab() as lab:
            for sc in SCENARIOS:
                if sc.fault:
                    lab.inject(sc.fault)
                try:
                    click.echo(f"\n=== {sc.title}" + (f"  [fault: {sc.fault}]" if sc.fault else ""))
                    table = subprocess.run(
                        doctor_argv(lab), capture_output=True, text=True, timeout=60
                    )
                    click.echo(table.stdout.rstrip())
                    if table.stderr.strip():
                        click.echo(table.stderr.rstrip(), err=True)
                    doc = json.loads(
                        subprocess.run(
                            doctor_argv(lab, "-o", "json"),
                            capture_output=True,
                            text=True,
                            timeout=60,
                        ).stdout
                    )
                    got = doc["first_failure"]
                    ok = got == sc.first_failure
                    click.echo(
                        f"--> exit {table.returncode}; first failure: {got or 'none'}"
                        + ("" if ok else f" (expected {sc.first_failure})")
                    )
                    if not ok:
                        mismatches += 1
                        if not keep_going:
                            break
                finally:
                    if sc.fault:
                        lab.heal()
    except LabError as exc:
        raise ToolError(f"the lab could not be built or healed: {exc}") from None
    click.echo(
        "\nLab removed."
        + (
            f" {mismatches} scenario(s) did not match."
            if mismatches
            else " Every scenario was diagnosed as expected."
        )
    )
    return 1 if mismatches else 0
