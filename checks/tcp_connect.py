"""The `tcp-connect` check."""

from __future__ import annotations

from k8sreach import check as facts
from k8sreach.check import Check
from k8sreach.context import RunContext
from k8sreach.result import Finding, Hop, failed, passed
from k8sreach.target import Target
from k8sreach.tcpprobe import TcpOutcome, connect


def classify(outcome: TcpOutcome, target: Target, timeout: float | None = None) -> Finding:
    """Connected, refused, timed out and unreachable are four different diagnoses."""
    where = f"{outcome.address}:{outcome.port}"
    evidence: dict[str, object] = {
        "address": outcome.address,
        "port": outcome.port,
        "outcome": outcome.kind,
        "errno": outcome.errno,
        "latency_ms": outcome.latency_ms,
    }
    if outcome.local:
        evidence["local"] = outcome.local
    kw = {"evidence": evidence, "address": where}
    svc = f"{target.service} -n {target.namespace}"

    if outcome.kind == "connected":
        return passed(
            f"connected to {where} in {outcome.latency_ms:g} ms",
            facts={facts.REACHABLE: True},
            **kw,
        )
    if outcome.kind == "refused":
        return failed(
            f"connection to {where} refused after {outcome.latency_ms:g} ms",
            remediation=(
                "Something on the path answered at once that nothing takes this connection. "
                "Either kube-proxy rejects it because the Service has no ready endpoints "
                f"(`kubectl get endpoints {svc}`; check the pods' readiness), or the pod's "
                "process does not listen on the target port (check the Service's targetPort "
                "and the pod's logs)."
            ),
            **kw,
        )
    if outcome.kind == "timeout":
        return failed(
            f"connection to {where} timed out after "
            f"{timeout if timeout is not None else round(outcome.latency_ms / 1000, 1):g} s "
            "(no answer at all)",
            remediation=(
                "Packets to the Service are dropped silently somewhere on the path. On the "
                "gateway check forwarding (`sysctl net.ipv4.ip_forward`, `iptables -S FORWARD` "
                f"for a DROP policy), kube-proxy's rules for {where} (`iptables-save -t nat | "
                f"grep {outcome.address}`) and the BGP routes to the pods (`ip route | grep "
                "bird`). Run with --ssh to let k8sreach look there."
            ),
            **kw,
        )
    if outcome.kind == "unreachable":
        return failed(
            f"{outcome.unreachable} unreachable for {where} ({outcome.errno})",
            remediation=(
                f"A router (or this client) reports {outcome.unreachable} unreachable for "
                f"{outcome.address}: a route on the way is missing. Check the client's route "
                "for the cluster ranges and the gateway's routes to the pods."
            ),
            **kw,
        )
    if outcome.kind == "blocked":
        return failed(
            f"this client's own firewall blocks connections to {where} ({outcome.errno})",
            remediation="Allow outgoing TCP to the cluster ranges in the local firewall.",
            **kw,
        )
    return failed(f"connecting to {where} failed: {outcome.message} ({outcome.errno})", **kw)


class TcpConnect(Check):
    """Connects to the Service's address and port: connected, refused, timed out, or
    network/host unreachable; evidence: errno and latency."""

    id = "tcp-connect"
    hop = Hop.SERVICE
    order = 900
    needs = (facts.ADDRESS, facts.PORT)
    provides = (facts.REACHABLE,)
    explained_by = (
        "route-present",
        "gateway-forwarding",
        "bgp-peer-established",
        "kube-proxy-rules",
        "service-exists",
        "endpoints-ready",
    )

    def run(self, ctx: RunContext) -> Finding:
        address = ctx.fact(facts.ADDRESS)
        port = int(ctx.fact(facts.PORT))
        timeout = ctx.probe_timeout()
        return classify(connect(address, port, timeout), ctx.target, round(timeout, 2))
