"""The `nodeport-connect` check."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from checks import _exposure
from checks._common import SERVICE_PORT, api_call, host_port
from checks.service_exists import port_text
from k8sreach import check as facts
from k8sreach.check import Check
from k8sreach.context import RunContext, Unavailable
from k8sreach.result import Finding, Hop, failed, passed, skipped
from k8sreach.target import Target
from k8sreach.tcpprobe import TcpOutcome

LOG = logging.getLogger(__name__)

_SHOWN = 3  # nodes named in the one-line summary; evidence has them all


@dataclass(frozen=True)
class NodeView:
    """A Node as the probe needs it: its name, InternalIP and Ready condition."""

    name: str
    internal_ip: str | None
    ready: str  # the Ready condition's status: True, False, Unknown, or "" when absent

    def doc(self) -> dict[str, Any]:
        return {"node": self.name, "internal_ip": self.internal_ip, "ready": self.ready or None}


def node_view(node: Mapping[str, Any]) -> NodeView:
    """Return a Node's name, first InternalIP and Ready status."""
    status = node.get("status") or {}
    internal = next(
        (
            str(a.get("address"))
            for a in status.get("addresses") or []
            if a.get("type") == "InternalIP" and a.get("address")
        ),
        None,
    )
    ready = next(
        (str(c.get("status")) for c in status.get("conditions") or [] if c.get("type") == "Ready"),
        "",
    )
    return NodeView(str((node.get("metadata") or {}).get("name")), internal, ready)


def not_applicable(svc: Mapping[str, Any], service_port: Mapping[str, Any] | None) -> str | None:
    """Return why there is no nodePort to probe, or None when there is one."""
    meta = svc.get("metadata") or {}
    where = f"{meta.get('namespace')}/{meta.get('name')}"
    spec = svc.get("spec") or {}
    kind = spec.get("type") or "ClusterIP"
    if kind not in ("NodePort", "LoadBalancer"):
        return (
            f"{where} is {_exposure.article(kind)} {kind} Service: only NodePort and "
            "LoadBalancer Services have a nodePort"
        )
    problem = _exposure.tcp_port_problem(service_port, "nodeport-connect")
    if problem:
        return problem
    assert service_port is not None
    if not service_port.get("nodePort"):
        return (
            f"port {port_text(service_port)} has no nodePort (allocateLoadBalancerNodePorts is "
            "false)"
        )
    return None


def judge(
    svc: Mapping[str, Any],
    service_port: Mapping[str, Any],
    nodes: Sequence[NodeView],
    outcomes: Mapping[str, TcpOutcome],
    target: Target,
    timeout: float,
) -> Finding:
    """Pass when at least one Ready node answers on the nodePort; fail saying how none did."""
    spec = svc.get("spec") or {}
    node_port = int(service_port["nodePort"])
    policy = spec.get("externalTrafficPolicy") or "Cluster"
    probed = [n for n in nodes if n.name in outcomes]
    skipped_nodes = [n for n in nodes if n.name not in outcomes]
    evidence: dict[str, Any] = {
        "service_type": spec.get("type"),
        "port": port_text(service_port),
        "node_port": node_port,
        "external_traffic_policy": policy,
        "nodes": [
            {**n.doc(), **_exposure.outcome_doc(outcomes[n.name], target, timeout)} for n in probed
        ],
        "not_probed": [{**n.doc(), "why": _why_not_probed(n, len(probed))} for n in skipped_nodes],
    }
    svc_ref = f"{target.service} -n {target.namespace}"

    if not probed:
        listing = ", ".join(f"{n.name} ({_why_not_probed(n, 0)})" for n in nodes[:_SHOWN])
        return failed(
            f"no Ready node with an InternalIP to probe nodePort {node_port} on"
            + (f": {listing}" if nodes else ": the API lists no nodes"),
            evidence=evidence,
            remediation="See the nodes' state: `kubectl get nodes -o wide` and `kubectl "
            "describe node NAME` for the Ready condition.",
        )

    answered = [n for n in probed if outcomes[n.name].kind == "connected"]
    silent = [n for n in probed if outcomes[n.name].kind != "connected"]
    if answered:
        first = outcomes[answered[0].name]
        shown = ", ".join(
            f"{n.name} {host_port(outcomes[n.name].address, node_port)} "
            f"({outcomes[n.name].latency_ms:g} ms)"
            for n in answered[:_SHOWN]
        )
        summary = f"{len(answered)} of {len(probed)} Ready nodes answer on nodePort {node_port}: "
        summary += shown + (f" and {len(answered) - _SHOWN} more" if len(answered) > _SHOWN else "")
        if silent:
            summary += "; no answer from " + _listing(silent, outcomes, node_port)
            if policy == "Local":
                summary += " (externalTrafficPolicy Local: only nodes with a ready endpoint answer)"
        return passed(summary, evidence=evidence, address=host_port(first.address, node_port))

    kinds = {"refused" if _exposure.refused(o) else o.kind for o in outcomes.values()}
    first = outcomes[probed[0].name]
    summary = f"no node answers on nodePort {node_port}: {_listing(probed, outcomes, node_port)}"
    if kinds == {"refused"}:
        remediation = (
            f"The nodes answer at once that nothing takes port {node_port}. kube-proxy on the "
            f"nodes has no rule for it (is kube-proxy running there? on a node: `iptables-save "
            f"-t nat | grep {node_port}` or `ipvsadm -Ln | grep {node_port}`), or the Service has "
            f"no ready endpoints and kube-proxy rejects: `kubectl get endpoints {svc_ref}`."
        )
        if policy == "Local":
            remediation += (
                " With externalTrafficPolicy Local a node answers only if a ready pod of the "
                "Service runs on it: `kubectl get pods -o wide` for where the pods run."
            )
    elif kinds == {"timeout"}:
        remediation = (
            f"Packets to port {node_port} on the nodes are dropped on the way: a firewall or "
            f"security group between this client and the nodes (NodePorts are in 30000-32767 "
            f"by default; allow TCP {node_port} to the nodes' InternalIPs), or a missing route "
            f"to the node network: `ip route get {first.address}`."
        )
    else:
        remediation = (
            f"Check this client's route to the node network (`ip route get {first.address}`) "
            f"and the firewalls on the way for TCP {node_port}; see each node's outcome in "
            "the evidence."
        )
    return failed(
        summary,
        evidence=evidence,
        remediation=remediation,
        address=host_port(first.address, node_port),
    )


def _why_not_probed(node: NodeView, probed: int) -> str:
    if node.ready != "True":
        return f"Ready is {node.ready}" if node.ready else "no Ready condition"
    if not node.internal_ip:
        return "no InternalIP"
    return f"only {probed} nodes are probed"


def _listing(nodes: Sequence[NodeView], outcomes: Mapping[str, TcpOutcome], port: int) -> str:
    text = ", ".join(
        f"{n.name} {host_port(outcomes[n.name].address, port)} "
        f"{_exposure.outcome_words(outcomes[n.name])}"
        for n in nodes[:_SHOWN]
    )
    return text + (f" and {len(nodes) - _SHOWN} more" if len(nodes) > _SHOWN else "")


class NodeportConnect(Check):
    """Connects to the Service's nodePort on every Ready node's InternalIP at once (NodePort
    and LoadBalancer Services, nodes from the API): passes when a node answers; evidence:
    each node's name, address, outcome, errno and latency."""

    id = "nodeport-connect"
    hop = Hop.SERVICE
    order = 910
    needs = (facts.CLUSTER, facts.SERVICE)
    wants = (SERVICE_PORT,)
    explained_by = ("service-exists", "endpoints-ready")
    # Left out of runs without a kubeconfig: only the API says whether there is a nodePort.
    cluster_view_only: ClassVar[bool] = True

    def run(self, ctx: RunContext) -> Finding:
        from k8sreach.cluster import ClusterError

        svc = ctx.fact(facts.SERVICE)
        service_port = ctx.fact(SERVICE_PORT)
        reason = not_applicable(svc, service_port)
        if reason is not None:
            return skipped(reason)
        try:
            items = api_call(ctx.cluster().list_nodes)
        except ClusterError as exc:
            raise Unavailable(f"cannot list nodes: {exc}") from None
        nodes = []
        for item in items:
            # A Node object of the wrong shape is the API's problem, not a crash of ours.
            try:
                nodes.append(node_view(item))
            except (AttributeError, TypeError, ValueError, KeyError) as exc:
                LOG.warning("ignoring a malformed Node from the API: %s", exc)
        usable = [n for n in nodes if n.ready == "True" and n.internal_ip][: _exposure.MAX_PROBES]
        timeout = ctx.probe_timeout()
        node_port = int(service_port["nodePort"])
        found = _exposure.probe_all([(str(n.internal_ip), node_port) for n in usable], timeout)
        LOG.debug("nodePort %d probed on %d of %d nodes", node_port, len(usable), len(nodes))
        outcomes = {n.name: o for n, o in zip(usable, found, strict=True)}
        return judge(svc, service_port, nodes, outcomes, ctx.target, timeout)
