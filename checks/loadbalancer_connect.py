"""The `loadbalancer-connect` check."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ClassVar

from checks import _exposure
from checks._common import SERVICE_PORT, host_port
from checks._exposure import Resolution
from checks.service_exists import port_text
from k8sreach import check as facts
from k8sreach.check import Check
from k8sreach.context import RunContext
from k8sreach.result import Finding, Hop, failed, passed, skipped, warned
from k8sreach.target import Target
from k8sreach.tcpprobe import TcpOutcome

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class BalancerEntry:
    """One status.loadBalancer.ingress entry: an IP, or a hostname and what it resolved to."""

    ip: str | None
    hostname: str | None
    resolution: Resolution | None = None

    @property
    def label(self) -> str:
        return self.ip or self.hostname or "?"

    @property
    def address(self) -> str | None:
        """Return the address to probe: the IP, else the hostname's first address."""
        if self.ip:
            return self.ip
        if self.resolution is not None and self.resolution.addresses:
            return self.resolution.addresses[0]
        return None


def balancer_entries(svc: Mapping[str, Any]) -> list[BalancerEntry]:
    """Return the Service's load-balancer addresses from status.loadBalancer.ingress."""
    ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    return [
        BalancerEntry(e.get("ip") or None, e.get("hostname") or None)
        for e in ingress
        if e.get("ip") or e.get("hostname")
    ]


def not_applicable(svc: Mapping[str, Any], service_port: Mapping[str, Any] | None) -> str | None:
    """Return why there is no load balancer to probe, or None."""
    meta = svc.get("metadata") or {}
    where = f"{meta.get('namespace')}/{meta.get('name')}"
    kind = (svc.get("spec") or {}).get("type") or "ClusterIP"
    if kind != "LoadBalancer":
        return f"{where} is {_exposure.article(kind)} {kind} Service: it has no load balancer"
    return _exposure.tcp_port_problem(service_port, "loadbalancer-connect")


def judge(
    svc: Mapping[str, Any],
    service_port: Mapping[str, Any],
    entries: Sequence[BalancerEntry],
    outcomes: Mapping[str, TcpOutcome],
    target: Target,
    timeout: float,
) -> Finding:
    """Pass when every load-balancer address answers on the port; pending (no address) and
    none answering fail, some answering warns."""
    spec = svc.get("spec") or {}
    port = int(service_port["port"])
    svc_ref = f"{target.service} -n {target.namespace}"
    evidence: dict[str, Any] = {
        "port": port_text(service_port),
        "load_balancer_class": spec.get("loadBalancerClass"),
        "entries": [],
    }
    for e in entries:
        doc: dict[str, Any] = {"ip": e.ip, "hostname": e.hostname}
        if e.resolution is not None:
            doc["resolution"] = e.resolution.doc()
        if e.label in outcomes:
            doc.update(_exposure.outcome_doc(outcomes[e.label], target, timeout))
        evidence["entries"].append(doc)

    if not entries:
        return failed(
            "load balancer has no address yet (pending)",
            evidence=evidence,
            remediation=(
                f"No load-balancer implementation has given the Service an address. See its "
                f"events: `kubectl describe service {svc_ref}`. In a cloud, the cloud "
                "controller manager assigns it (check its logs and quotas); on bare metal "
                "something like MetalLB or kube-vip must be installed and have a free address "
                "pool. Until then, the nodePort works (see nodeport-connect)."
            ),
        )
    unresolved = [e for e in entries if e.address is None]
    answered = [e for e in entries if e.label in outcomes and outcomes[e.label].kind == "connected"]
    silent = [e for e in entries if e.label in outcomes and outcomes[e.label].kind != "connected"]

    def words(e: BalancerEntry) -> str:
        if e.address is None:
            assert e.resolution is not None
            return f"{e.hostname} does not resolve ({e.resolution.describe()})"
        where = host_port(e.address, port)
        name = f"{e.hostname} ({where})" if e.hostname else where
        return f"{name} {_exposure.outcome_words(outcomes[e.label])}"

    listing = "; ".join(words(e) for e in entries)
    first = next((e for e in entries if e.address), None)
    address = host_port(first.address, port) if first is not None and first.address else None
    if answered and not (silent or unresolved):
        return passed(f"load balancer {listing}", evidence=evidence, address=address)
    if answered:
        return warned(
            f"load balancer: {listing}",
            evidence=evidence,
            remediation="Some of the load balancer's addresses do not answer; clients given "
            "those (DNS round robin) fail. Check each address in the evidence.",
            address=address,
        )
    kinds = {
        "refused" if _exposure.refused(outcomes[e.label]) else outcomes[e.label].kind
        for e in silent
    }
    if unresolved and not silent:
        remediation = (
            f"The load balancer's hostname does not resolve here. Check the name with `dig "
            f"{unresolved[0].hostname}` against this client's resolver; a new cloud load "
            "balancer's name can take minutes to appear in DNS."
        )
    elif kinds == {"refused"}:
        remediation = (
            f"The load balancer answers that nothing takes port {port}: it has no healthy "
            f"backend. Its health checks reach the nodes on the nodePort (see nodeport-connect) "
            f"or on the healthCheckNodePort with externalTrafficPolicy Local; check the "
            f"endpoints: `kubectl get endpoints {svc_ref}`, and the listener's port."
        )
    elif kinds == {"timeout"}:
        remediation = (
            f"Packets to the load balancer's port {port} are dropped: a firewall or security "
            "group in front of it (loadBalancerSourceRanges on the Service limit the clients "
            "too), or an address this client cannot route to: `ip route get "
            f"{silent[0].address}`."
        )
    else:
        remediation = "See each address's outcome in the evidence."
    return failed(
        f"no load-balancer address answers: {listing}",
        evidence=evidence,
        remediation=remediation,
        address=address,
    )


class LoadbalancerConnect(Check):
    """Connects to the Service's load-balancer address (status.loadBalancer.ingress: an IP, or
    a hostname resolved with the system resolver) on the Service port: pending (no address
    yet), refused, timed out; evidence: each address and its outcome."""

    id = "loadbalancer-connect"
    hop = Hop.SERVICE
    order = 920
    needs = (facts.CLUSTER, facts.SERVICE)
    wants = (SERVICE_PORT,)
    explained_by = ("service-exists", "endpoints-ready", "nodeport-connect")
    # Left out of runs without a kubeconfig: only the API knows the load balancer.
    cluster_view_only: ClassVar[bool] = True

    def run(self, ctx: RunContext) -> Finding:
        svc = ctx.fact(facts.SERVICE)
        service_port = ctx.fact(SERVICE_PORT)
        reason = not_applicable(svc, service_port)
        if reason is not None:
            return skipped(reason)
        timeout = ctx.probe_timeout()
        entries = balancer_entries(svc)[: _exposure.MAX_PROBES]
        names = [e for e in entries if e.ip is None and e.hostname]
        if names:
            with ThreadPoolExecutor(max_workers=len(names)) as pool:
                resolved = dict(
                    zip(
                        [e.hostname for e in names],
                        pool.map(
                            lambda e: _exposure.resolve_system(str(e.hostname), timeout), names
                        ),
                        strict=True,
                    )
                )
            entries = [
                BalancerEntry(e.ip, e.hostname, resolved[e.hostname]) if e in names else e
                for e in entries
            ]
        port = int(service_port["port"])
        probed = [e for e in entries if e.address]
        timeout = ctx.probe_timeout()
        found = _exposure.probe_all([(str(e.address), port) for e in probed], timeout)
        outcomes = {e.label: o for e, o in zip(probed, found, strict=True)}
        return judge(svc, service_port, entries, outcomes, ctx.target, timeout)
