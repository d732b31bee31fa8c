"""Helpers of the exposure checks (NodePort, LoadBalancer, Ingress): bounded name resolution
and concurrent TCP probes."""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from checks.tcp_connect import classify
from k8sreach.target import Target
from k8sreach.tcpprobe import TcpOutcome, connect

LOG = logging.getLogger(__name__)

MAX_PROBES = 32  # concurrent probes: callers probe at most this many, so one wave
# how tcpprobe says "refused": a reset from the target, an ICMP rejection, or either
REFUSED_KINDS = frozenset({"reset", "rejected", "refused"})
# getaddrinfo's "no such name" and "no address for the name" (EAI_NODATA is Linux only)
_NO_NAME = {socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)}


@dataclass(frozen=True)
class Resolution:
    """What resolving one host name gave: `kind` is address, nxdomain, nodata, timeout, error
    or literal (the host was an address already)."""

    host: str
    kind: str
    addresses: tuple[str, ...] = ()
    cnames: tuple[str, ...] = ()
    resolver: str = "system resolver"
    error: str | None = None
    latency_ms: float | None = None

    @property
    def ok(self) -> bool:
        return bool(self.addresses)

    def doc(self) -> dict[str, Any]:
        """Return the resolution as evidence."""
        return {
            "host": self.host,
            "resolver": self.resolver,
            "outcome": self.kind,
            "addresses": list(self.addresses),
            "cnames": list(self.cnames),
            "error": self.error,
            "latency_ms": self.latency_ms,
        }

    def describe(self) -> str:
        """Return a short phrase: '10.0.0.5', 'NXDOMAIN from 192.168.77.53:53', ..."""
        if self.addresses:
            return ", ".join(self.addresses)
        if self.kind == "timeout":
            return f"no answer from the {self.resolver} within the timeout"
        if self.kind == "nxdomain":
            return f"NXDOMAIN from the {self.resolver}"
        if self.kind == "nodata":
            return f"no IPv4/IPv6 address from the {self.resolver}"
        return f"{self.resolver}: {self.error or self.kind}"


def tcp_port_problem(service_port: Any, check_id: str) -> str | None:
    """Why a probe of the Service port cannot run (none chosen, not TCP), or None."""
    from checks.service_exists import port_text

    if service_port is None:
        return "no Service port chosen: give -p NAME or -p NUMBER"
    if (service_port.get("protocol") or "TCP") != "TCP":
        return f"port {port_text(service_port)} is not TCP; {check_id} probes TCP only"
    return None


def article(word: str) -> str:
    """Return 'an' before a vowel ('an ExternalName'), else 'a'."""
    return "an" if word[:1].lower() in "aeiou" else "a"


def is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def resolve_system(host: str, timeout: float) -> Resolution:
    """Resolve with the system resolver (getaddrinfo), giving up after `timeout` seconds."""
    if is_address(host):
        return Resolution(host, "literal", (host,), resolver="literal address")
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["infos"] = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            box["error"] = exc
        except (OSError, UnicodeError) as exc:
            box["error"] = exc

    LOG.debug("probe: resolve %s with the system resolver (timeout %.1f s)", host, timeout)
    start = time.monotonic()
    # getaddrinfo has no timeout of its own: run it aside and stop waiting at the timeout
    worker = threading.Thread(target=work, name=f"resolve {host}", daemon=True)
    worker.start()
    worker.join(timeout)
    latency = round((time.monotonic() - start) * 1000, 1)
    if worker.is_alive():
        return Resolution(
            host, "timeout", error=f"no answer within {timeout:g} s", latency_ms=latency
        )
    if "error" in box:
        exc = box["error"]
        if isinstance(exc, socket.gaierror) and exc.errno in _NO_NAME:
            kind = "nxdomain" if exc.errno == socket.EAI_NONAME else "nodata"
            return Resolution(host, kind, error=str(exc.strerror), latency_ms=latency)
        message = getattr(exc, "strerror", None) or str(exc)
        return Resolution(host, "error", error=message, latency_ms=latency)
    found: list[str] = []
    for family, _, _, _, sockaddr in box.get("infos") or []:
        if family in (socket.AF_INET, socket.AF_INET6) and sockaddr[0] not in found:
            found.append(str(sockaddr[0]))
    # IPv4 first: what a client without IPv6 routes to the cluster would use
    found.sort(key=lambda a: ":" in a)
    LOG.debug("answer: %s -> %s in %.1f ms", host, found, latency)
    return Resolution(host, "address" if found else "nodata", tuple(found), latency_ms=latency)


def resolve_dns(host: str, server: str, port: int, timeout: float) -> Resolution:
    """Resolve an A record by asking one DNS server (--dns), following CNAMEs."""
    from k8sreach.dnsprobe import query

    if is_address(host):
        return Resolution(host, "literal", (host,), resolver="literal address")
    resolver = f"DNS server {server}:{port}"
    outcome = query(server, port, host.rstrip(".") + ".", "A", timeout)
    if outcome.kind != "answer":
        kind = "timeout" if outcome.kind == "timeout" else "error"
        return Resolution(
            host, kind, resolver=resolver, error=outcome.error, latency_ms=outcome.latency_ms
        )
    if outcome.rcode == "NXDOMAIN":
        kind = "nxdomain"
    elif outcome.rcode != "NOERROR":
        return Resolution(
            host, "error", resolver=resolver, error=outcome.rcode, latency_ms=outcome.latency_ms
        )
    else:
        kind = "address" if outcome.addresses else "nodata"
    return Resolution(
        host,
        kind,
        tuple(outcome.addresses),
        tuple(outcome.cnames),
        resolver=resolver,
        latency_ms=outcome.latency_ms,
    )


def probe_all(targets: Sequence[tuple[str, int]], timeout: float) -> list[TcpOutcome]:
    """Connect to every (address, port) at once, each within `timeout`; outcomes in order."""
    if not targets:
        return []
    with ThreadPoolExecutor(max_workers=min(len(targets), MAX_PROBES)) as pool:
        return list(pool.map(lambda t: connect(t[0], t[1], timeout), targets))


def outcome_doc(outcome: TcpOutcome, target: Target, timeout: float) -> dict[str, Any]:
    """Return one probe as evidence, with tcp-connect's one-line reading of it."""
    return {
        "address": outcome.address,
        "port": outcome.port,
        "outcome": outcome.kind,
        "errno": outcome.errno,
        "latency_ms": outcome.latency_ms,
        "summary": classify(outcome, target, round(timeout, 2)).summary,
    }


def refused(outcome: TcpOutcome) -> bool:
    """Return whether something answered at once that it takes no connection: a TCP reset
    from the target, or an ICMP rejection on the way."""
    return outcome.kind in REFUSED_KINDS


def outcome_words(outcome: TcpOutcome) -> str:
    """Return how a probe ended in a few words: 'connected in 1.2 ms', 'refused', ..."""
    icmp = getattr(outcome, "icmp", None)
    if outcome.kind == "connected":
        return f"connected in {outcome.latency_ms:g} ms"
    if outcome.kind == "timeout":
        return "timed out"
    if outcome.kind == "unreachable":
        by = f" (ICMP from {icmp.sender})" if icmp is not None else ""
        return f"{outcome.unreachable} unreachable{by}"
    if outcome.kind == "reset":
        return "refused (TCP reset)"
    if outcome.kind == "rejected":
        return f"rejected by {icmp.sender} ({icmp.meaning})" if icmp is not None else "rejected"
    return outcome.kind if outcome.kind != "error" else f"error {outcome.errno}"
