"""Benchmark k8sreach on the lab and print median wall times against their goals.

Run as root on Linux:  .venv/bin/python bench/bench.py [--runs N]

Figures: a healthy `doctor` (client checks, and the full chain over SSH), a run whose gateway
drops everything it would forward, `k8sreach --help` (start-up cost: heavy imports must stay
lazy), and the full chain against bench/probes.sh, a shell script that runs the same probes
with one `ssh` invocation each, measured side by side in one run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from k8sreach.demo import doctor_argv  # noqa: E402
from k8sreach.lab import Lab  # noqa: E402

HERE = Path(__file__).resolve().parent


def _time(argv: list[str], runs: int, warmup: int = 1) -> list[float]:
    times = []
    for i in range(warmup + runs):
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return times


def _line(name: str, times: list[float], goal: str) -> None:
    med = statistics.median(times)
    print(
        f"{name:<44} median {med * 1000:7.0f} ms  (min {min(times) * 1000:.0f}, "
        f"max {max(times) * 1000:.0f}, n={len(times)})  goal {goal}"
    )


def _side_by_side(a: list[str], b: list[str], runs: int) -> tuple[list[float], list[float]]:
    """A B A B ...: both see the same machine drift."""
    ta, tb = [], []
    _time(a, 0, 1)
    _time(b, 0, 1)
    for _ in range(runs):
        ta += _time(a, 1, 0)
        tb += _time(b, 1, 0)
    return ta, tb


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench: needs root (it builds the network lab)", file=sys.stderr)
        return 2
    k8sreach = str(Path(sys.executable).with_name("k8sreach"))
    timeout = 2.0
    with Lab() as lab:
        print(f"lab built; probe timeout {timeout:g} s; {args.runs} runs each\n")
        _line(
            "doctor, healthy, client checks",
            _time(doctor_argv(lab, ssh=False), args.runs),
            "< 500 ms",
        )
        _line("doctor, healthy, full chain over SSH", _time(doctor_argv(lab), args.runs), "-")
        lab.inject("gateway-drop-all")
        try:
            _line(
                "doctor, gateway drops everything",
                _time(doctor_argv(lab), max(3, args.runs // 2)),
                f"< {timeout * 1000 + 500:.0f} ms (timeout + 0.5 s)",
            )
        finally:
            lab.heal()
        _line("k8sreach --help", _time([k8sreach, "--help"], args.runs), "< 200 ms")

        script = lab.client_argv(
            [
                "bash",
                str(HERE / "probes.sh"),
                lab.ssh_dest,
                lab.ssh_identity,
                lab.ssh_options.get("UserKnownHostsFile", ""),
                lab.dns_proxy_ip,
                lab.service_ip,
                str(lab.service_port),
                lab.gateway_ip,
            ]
        )
        ours, theirs = _side_by_side(doctor_argv(lab), script, args.runs)
        ratio = statistics.median(a / b for a, b in zip(ours, theirs, strict=True))
        _line("full chain: k8sreach doctor --ssh", ours, "-")
        _line("full chain: shell script, one ssh each", theirs, "-")
        print(f"{'ratio k8sreach / shell script (median)':<44} {ratio:10.2f}       goal <= 0.80")
    return 0


if __name__ == "__main__":
    sys.exit(main())
