"""Helpers the DNS checks share: which server to ask, UDP against TCP, SRV for named ports."""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from k8sreach import check as facts
from k8sreach.config import Settings
from k8sreach.dnsprobe import DnsOutcome, query, query_tcp, system_nameservers
from k8sreach.result import Finding, Status, failed, warned
from k8sreach.target import Target

LOG = logging.getLogger(__name__)
_ASK = {"udp": query, "tcp": query_tcp}


@dataclass(frozen=True)
class Server:
    """The DNS server a run asks, and where that choice came from (--dns, system resolver)."""

    host: str
    port: int
    origin: str

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def dns_server(settings: Settings) -> Server | None:
    """Return the server dns-resolves asks: --dns, else the first of the system's resolvers."""
    if settings.dns is not None:
        return Server(settings.dns.host, settings.dns.port, "--dns")
    servers = system_nameservers()
    return Server(servers[0], 53, "system resolver") if servers else None


def ask_all(
    questions: list[tuple[str, str, str]], server: str, port: int, timeout: float
) -> list[DnsOutcome]:
    """Ask (transport, name, type) questions of one server at once; all end within timeout."""
    with ThreadPoolExecutor(max_workers=max(1, min(len(questions), 16))) as pool:
        futures: list[Future[DnsOutcome]] = [
            pool.submit(
                query_tcp if transport == "tcp" else query, server, port, name, qtype, timeout
            )
            for transport, name, qtype in questions
        ]
        return [f.result() for f in futures]


def transport_evidence(outcome: DnsOutcome) -> dict[str, Any]:
    """Return what one transport got, for a check's evidence."""
    found: dict[str, Any] = {
        "outcome": outcome.kind,
        "rcode": outcome.rcode,
        "flags": list(outcome.flags),
        "answers": list(outcome.addresses),
        "latency_ms": outcome.latency_ms,
    }
    if outcome.records:
        found["records"] = list(outcome.records)
    if outcome.error:
        found["error"] = outcome.error
    if outcome.ignored_replies:
        found["ignored_replies"] = outcome.ignored_replies
    if outcome.notes:
        found["notes"] = list(outcome.notes)
    return found


def seconds(latency_ms: float | None) -> str:
    """Return a wait in seconds for a summary: at most one decimal, never "0"."""
    return f"{max(round((latency_ms or 0) / 1000, 1), 0.1):g}"


def replies_ignored(count: int) -> str:
    """Return "3 replies were ignored" (or "1 reply was ignored")."""
    return "1 reply was ignored" if count == 1 else f"{count} replies were ignored"


def failure_text(outcome: DnsOutcome) -> str:
    """Return why a query got no answer (or which error rcode), as a short phrase."""
    proto = "TCP" if outcome.transport == "tcp" else "UDP"
    if outcome.udp_truncated and outcome.kind != "answer":
        # the UDP answer had TC set; the retry over TCP is what failed
        outcome = replace(outcome, udp_truncated=False)
        return f"a truncated (TC) answer over UDP, then {failure_text(outcome)}"
    if outcome.kind == "timeout" and outcome.ignored_replies:
        return (
            f"no valid answer over {proto} within {seconds(outcome.latency_ms)} s "
            f"({replies_ignored(outcome.ignored_replies)})"
        )
    if outcome.kind == "timeout":
        return f"no answer over {proto} within {seconds(outcome.latency_ms)} s"
    if outcome.kind == "port-unreachable":
        if proto == "TCP":
            return f"TCP connection refused (nothing listens on TCP {outcome.port})"
        return f"nothing listens on UDP {outcome.port} (ICMP port unreachable)"
    if outcome.kind == "unreachable":
        return f"unreachable over {proto} ({outcome.error})"
    if outcome.kind != "answer":
        return f"{proto} query failed: {outcome.error}"
    if outcome.rcode != "NOERROR":
        return f"{outcome.rcode} over {proto}"
    if not outcome.addresses:
        return f"no {outcome.qtype} record over {proto} (NODATA)"
    return f"{', '.join(outcome.addresses)} over {proto}"


def combine_transports(
    finding: Finding, udp: DnsOutcome, tcp: DnsOutcome, tcp_finding: Finding | None = None
) -> Finding:
    """Judge the UDP finding together with the TCP answer to the same question.

    UDP answering while TCP fails keeps the address but warns (large answers come truncated
    and the retry over TCP fails); UDP failing while TCP answers is a failure that says so,
    with TCP's address published so later checks still run. `tcp_finding` is the TCP
    outcome classified like the UDP one.
    """
    evidence = dict(finding.evidence)
    evidence["outcome"] = udp.kind
    evidence["udp"] = transport_evidence(udp)
    evidence["tcp"] = transport_evidence(tcp)
    same = replace(finding, evidence=evidence)
    server = f"{udp.server}:{udp.port}"
    name = udp.qname
    udp_answered, tcp_answered = udp.kind == "answer", tcp.kind == "answer"
    if udp_answered and tcp_answered:
        if set(udp.addresses) != set(tcp.addresses) or udp.rcode != tcp.rcode:
            evidence["notes"] = [
                *evidence.get("notes", []),
                f"UDP and TCP answers differ: {failure_text(udp)}; {failure_text(tcp)}",
            ]
        return same
    if udp_answered:
        if finding.status not in (Status.PASS, Status.WARN):
            return same
        return warned(
            f"{finding.summary}; answers over UDP only: large answers (TC) will fail",
            evidence=evidence,
            remediation=(
                f"{server} answers over UDP but not over TCP ({failure_text(tcp)}). An answer "
                "too large for a datagram (a headless Service with many pods, a long CNAME "
                "chain) comes back truncated (TC) and resolvers retry it over TCP, which "
                f"fails. Let TCP port {udp.port} through to the DNS server and have the proxy "
                f"listen on TCP {udp.port} as well as UDP (nginx: a stream server with "
                f"`listen {udp.port};` beside `listen {udp.port} udp;`); check with "
                f"`dig +tcp @{udp.server} -p {udp.port} {name}`."
            )
            + (f" {finding.remediation}" if finding.remediation else ""),
            address=finding.address,
            facts=finding.facts,
        )
    if udp.transport == "tcp":
        # the UDP answer came truncated and query() retried over TCP, which failed:
        # classify() already says so
        return same
    if not tcp_answered:
        return same
    tcp_facts = tcp_finding.facts if tcp_finding and tcp_finding.status is Status.PASS else {}
    return failed(
        f"{finding.summary}, but over TCP it answers {failure_text(tcp).removesuffix(' over TCP')}"
        ": UDP to the DNS server fails",
        evidence=evidence,
        remediation=(
            f"Over TCP {server} answers, so the server runs and reaches its upstream; UDP "
            f"port {udp.port} is what fails. A firewall on the way drops or rejects UDP "
            f"{udp.port}, or the proxy's UDP listener is missing or broken (nginx: `listen "
            f"{udp.port} udp;`). Resolvers ask over UDP first, so lookups on this client fail. "
            f"Compare `dig @{udp.server} -p {udp.port} {name}` with "
            f"`dig +tcp @{udp.server} -p {udp.port} {name}`."
        ),
        address=finding.address,
        facts=tcp_facts,
    )


# ---- SRV for named ports ---------------------------------------------------------------


@dataclass(frozen=True)
class SrvRecord:
    """One SRV record: priority, weight, port and target host."""

    priority: int
    weight: int
    port: int
    target: str


def srv_question(target: Target, protocol: str = "tcp") -> str:
    """Return the SRV name kube-dns publishes for the target's named port."""
    return f"_{target.port}._{protocol}.{target.fqdn}"


def parse_srv(records: tuple[str, ...]) -> list[SrvRecord]:
    """Return the SRV records among zone-file texts ('0 100 3306 host.'), best first."""
    parsed = []
    for text in records:
        fields = text.split()
        if len(fields) != 4 or not all(f.isdigit() for f in fields[:3]):
            continue
        prio, weight, port = (int(f) for f in fields[:3])
        if 1 <= port <= 65535:
            parsed.append(SrvRecord(prio, weight, port, fields[3]))
    return sorted(parsed, key=lambda r: (r.priority, -r.weight, r.port, r.target))


def with_srv(finding: Finding, outcome: DnsOutcome, target: Target) -> Finding:
    """Add the SRV answer for a named port to a finding and publish its port number."""
    records = parse_srv(outcome.records)
    evidence = dict(finding.evidence)
    evidence["srv"] = {
        "question": f"{outcome.qname} SRV",
        **transport_evidence(outcome),
        "records": list(outcome.records),
        "port": records[0].port if records else None,
    }
    if records:
        best = records[0]
        summary = f"{finding.summary}; port {target.port} is {best.port} (SRV)"
        return replace(
            finding,
            summary=summary,
            evidence=evidence,
            facts={**finding.facts, facts.PORT: best.port},
        )
    if finding.status not in (Status.PASS, Status.WARN):
        return replace(finding, evidence=evidence)
    why = failure_text(outcome) if outcome.kind != "answer" or outcome.rcode != "NOERROR" else ""
    why = why or "no SRV record (NODATA)"
    return warned(
        f"{finding.summary}; no port number for port name {target.port}: {outcome.qname} SRV "
        f"got {why}",
        evidence=evidence,
        remediation=(
            f"kube-dns publishes {outcome.qname} SRV for a Service port named "
            f"{target.port} with protocol TCP. Check the port's name: `kubectl get service "
            f"{target.service} -n {target.namespace} -o jsonpath='{{.spec.ports[*].name}}'`, "
            f"or give the number: `k8sreach doctor {target.short_name}:PORT`."
        )
        + (f" {finding.remediation}" if finding.remediation else ""),
        address=finding.address,
        facts=finding.facts,
    )


def no_server() -> Finding:
    """Return the failure of a client that has no DNS server configured."""
    return failed(
        "this client has no DNS server configured",
        remediation="Configure the DNS proxy as the client's DNS server, or give --dns SERVER.",
    )
