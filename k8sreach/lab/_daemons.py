"""The lab's daemons: what each one runs, where it logs and how we know it serves."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from k8sreach.lab import _configs as C
from k8sreach.lab import _plan as P
from k8sreach.lab._proc import (
    LabError,
    listening,
    log_tail,
    netns_argv,
    read_ready,
    spawn,
    wait_until,
)

if TYPE_CHECKING:
    from k8sreach.lab.lab import Lab

_READY_TIMEOUT = 10.0
_BANNER_SERVER = Path(__file__).resolve().parent / "_banner_server.py"


@dataclass(frozen=True)
class _Daemon:
    """How to start one daemon and tell that it serves."""

    host: str
    log: str
    argv: Callable[[Lab], list[str]]
    ready: Callable[[Lab, int], bool]
    ready_line: bool = False
    in_view: bool = False


def _listener_argv(lab: Lab) -> list[str]:
    """Return the mysql-0 listener's command line."""
    script = str(_BANNER_SERVER)
    return [sys.executable, "-I", "-S", script, P.MYSQL_POD_IP, str(P.MYSQL_PORT), P.MYSQL_BANNER]


def _kube_dns_argv(lab: Lab) -> list[str]:
    """Return kube-dns's dnsmasq command line with the records currently wanted."""
    return C.kube_dns_argv(lab._view(P.KUBE_DNS_POD), C.kube_dns_records(lab._mysql_read_record))


def _sshd_argv(host: str) -> Callable[[Lab], list[str]]:
    """Return a builder for a host's sshd command line (foreground, log to a file)."""

    def argv(lab: Lab) -> list[str]:
        view = lab._view(host)
        return [
            "/usr/sbin/sshd",
            "-D",
            "-f",
            str(view / "sshd_config"),
            "-E",
            str(view / "sshd.log"),
        ]

    return argv


def _bird_argv(host: str) -> Callable[[Lab], list[str]]:
    """Return a builder for a host's BIRD command line (foreground, lab socket)."""

    def argv(lab: Lab) -> list[str]:
        view = lab._view(host)
        sock = view / "run" / "bird" / "bird.ctl"
        return ["bird", "-f", "-c", str(view / "bird.conf"), "-s", str(sock)]

    return argv


def _dns_ready(ip: str) -> Callable[[Lab, int], bool]:
    """Return a check that dnsmasq listens on ip:53 over UDP and TCP."""
    return lambda lab, pid: listening(pid, "udp", ip, 53) and listening(pid, "tcp", ip, 53)


def _tcp_ready(ip: str, port: int) -> Callable[[Lab, int], bool]:
    """Return a check that something listens on ip:port over TCP."""
    return lambda lab, pid: listening(pid, "tcp", ip, port)


def _bird_ready(host: str) -> Callable[[Lab, int], bool]:
    """Return a check that BIRD's control socket exists."""
    return lambda lab, pid: (lab._view(host) / "run" / "bird" / "bird.ctl").exists()


DAEMONS: dict[str, _Daemon] = {
    "mysql-0/listener": _Daemon(
        P.MYSQL_POD, "listener.log", _listener_argv, lambda lab, pid: True, ready_line=True
    ),
    "kube-dns/dnsmasq": _Daemon(
        P.KUBE_DNS_POD, "dnsmasq.out", _kube_dns_argv, _dns_ready(P.KUBE_DNS_POD_IP)
    ),
    "dnsproxy/dnsmasq": _Daemon(
        "dnsproxy",
        "dnsmasq.out",
        lambda lab: C.dns_proxy_argv(lab._view("dnsproxy")),
        _dns_ready(P.DNS_PROXY_IP),
    ),
    "gateway/sshd": _Daemon(
        "gateway", "sshd.out", _sshd_argv("gateway"), _tcp_ready(P.GATEWAY_IP, 22), in_view=True
    ),
    "node/sshd": _Daemon(
        "node", "sshd.out", _sshd_argv("node"), _tcp_ready(P.NODE_IP, 22), in_view=True
    ),
    "gateway/bird": _Daemon(
        "gateway", "bird.out", _bird_argv("gateway"), _bird_ready("gateway"), in_view=True
    ),
    "node/bird": _Daemon("node", "bird.out", _bird_argv("node"), _bird_ready("node"), in_view=True),
}
_VIEW_HOSTS = ("gateway", "node")


def _spawn(lab: Lab, key: str) -> subprocess.Popen[bytes]:
    """Start daemon ``key`` in its namespace (and mount view); track and return it."""
    spec = DAEMONS[key]
    log = lab._view(spec.host) / spec.log
    if spec.in_view:
        anchor = lab._procs.get(f"{spec.host}/anchor")
        if anchor is None or anchor.poll() is not None:
            raise LabError(f"the mount view of {spec.host} is gone; cannot start {key}")
        argv = ["nsenter", "-t", str(anchor.pid), "-m", "-u", "-n", "--", *spec.argv(lab)]
    else:
        argv = netns_argv(lab.ns[spec.host], spec.argv(lab))
    proc = spawn(argv, log, ready_pipe=spec.ready_line)
    lab._procs[key] = proc
    lab._all_procs.append(proc)
    return proc


def _await(lab: Lab, key: str) -> None:
    """Wait until daemon ``key`` serves; raise LabError with its log if it dies or hangs."""
    spec = DAEMONS[key]
    proc = lab._procs[key]
    log = lab._view(spec.host) / spec.log
    if spec.ready_line:
        read_ready(proc, key, _READY_TIMEOUT, log)
        return

    def check() -> bool:
        if proc.poll() is not None:
            raise LabError(f"{key} exited with {proc.returncode}: {_logs(lab, spec.host)}")
        return spec.ready(lab, proc.pid)

    wait_until(check, f"{key} to serve", _READY_TIMEOUT, log)


def _logs(lab: Lab, host: str) -> str:
    """Return the tails of every log in a host's lab directory."""
    parts = []
    for path in sorted(lab._view(host).glob("*.log")) + sorted(lab._view(host).glob("*.out")):
        parts.append(f"{path.name}: {log_tail(path, 4)}")
    return "; ".join(parts)


def _spawn_anchor(lab: Lab, host: str) -> subprocess.Popen[bytes]:
    """Start the process that builds and holds a host's private mount view."""
    script = C.mount_view_script(lab._view(host), host)
    unshare = ["unshare", "--mount", "--uts", "--propagation", "private"]
    argv = netns_argv(lab.ns[host], [*unshare, "sh", "-c", script])
    proc = spawn(argv, lab._view(host) / "anchor.log", ready_pipe=True)
    lab._procs[f"{host}/anchor"] = proc
    lab._all_procs.append(proc)
    return proc


def start_all(lab: Lab) -> None:
    """Start every daemon of the lab, in parallel, and wait until all of them serve."""
    plain = [k for k, spec in DAEMONS.items() if not spec.in_view]
    for host in _VIEW_HOSTS:
        _spawn_anchor(lab, host)
    for key in plain:
        _spawn(lab, key)
    for host in _VIEW_HOSTS:
        anchor = lab._procs[f"{host}/anchor"]
        read_ready(
            anchor, f"the mount view of {host}", _READY_TIMEOUT, lab._view(host) / "anchor.log"
        )
    viewed = [k for k, spec in DAEMONS.items() if spec.in_view]
    for key in viewed:
        _spawn(lab, key)
    for key in plain + viewed:
        _await(lab, key)


def start(lab: Lab, key: str) -> None:
    """(Re)start one daemon and wait until it serves."""
    _spawn(lab, key)
    _await(lab, key)
