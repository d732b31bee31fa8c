"""The `tcp-connect` check."""

from __future__ import annotations

import logging
import threading
import time

from checks._common import range_of
from k8sreach import check as facts
from k8sreach import trace
from k8sreach.check import Check
from k8sreach.config import IPNetwork
from k8sreach.context import RunContext
from k8sreach.result import Finding, Hop, failed, passed
from k8sreach.target import Target
from k8sreach.tcpprobe import TcpOutcome, connect
from k8sreach.trace import HopAnswer, Trace

LOG = logging.getLogger(__name__)


def hop_of(
    sender: str, target: str, gateway: str | None, pod_cidrs: tuple[IPNetwork, ...] = ()
) -> str:
    """Which part of the path an answering address belongs to."""
    if sender == target:
        return "service"
    if gateway and sender == gateway:
        return "gateway"
    if range_of(sender, (), pod_cidrs) == "pod":
        return "pod"
    return "router"


def _trace_hop(
    answer: HopAnswer, target: str, gateway: str | None, pod_cidrs: tuple[IPNetwork, ...]
) -> str | None:
    if answer.sender is None:
        return None
    if answer.sender == target and answer.kind == "time-exceeded":
        # A router that DNATs the ClusterIP answers for it: conntrack rewrites the ICMP
        # error's source to the address the client asked for. The first one is the gateway.
        return "gateway" if answer.ttl == 1 and gateway else "router"
    return hop_of(answer.sender, target, gateway, pod_cidrs)


def localise(
    found: Trace, target: str, gateway: str | None, pod_cidrs: tuple[IPNetwork, ...]
) -> tuple[list[dict[str, object]], str | None, str]:
    """The hops a probe crossed, the hop where packets stop, and a sentence saying so."""
    path: list[dict[str, object]] = [
        {
            "ttl": h.ttl,
            "address": h.sender,
            "answer": h.kind,
            "hop": _trace_hop(h, target, gateway, pod_cidrs),
        }
        for h in found.hops
    ]
    last = found.last
    if last is None or last.sender is None:
        return (
            path,
            None,
            "no router answered TTL-limited probes: the packets stop at the first hop or "
            "before it (the gateway does not forward them, or they are not sent to it)",
        )
    hop = _trace_hop(last, target, gateway, pod_cidrs)
    if found.reached_target:
        return path, "service", f"probes reach {last.sender}, which answers"
    name = "the gateway" if hop == "gateway" else f"a {hop}"
    seen = (
        f"TTL {last.ttl}, answering as {last.sender} through its NAT"
        if last.sender == target
        else f"{last.sender}, TTL {last.ttl}"
    )
    return path, hop, f"packets reach {name} ({seen}) and go no further"


def classify(
    outcome: TcpOutcome,
    target: Target,
    timeout: float | None = None,
    gateway: str | None = None,
    pod_cidrs: tuple[IPNetwork, ...] = (),
    found: Trace | None = None,
    trace_note: str | None = None,
) -> Finding:
    """Connected; reset by the target; rejected on the way (ICMP, naming the sender);
    unreachable (naming the router); silent timeout: five different diagnoses."""
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
    sender_hop = None
    if outcome.icmp is not None:
        sender_hop = hop_of(outcome.icmp.sender, outcome.address, gateway, pod_cidrs)
        evidence["answered_by"] = outcome.icmp.sender
        evidence["answered_by_hop"] = sender_hop
        evidence["icmp"] = {
            "type": outcome.icmp.type,
            "code": outcome.icmp.code,
            "meaning": outcome.icmp.meaning,
        }
    elif outcome.kind == "reset":
        evidence["answered_by"] = outcome.address
        evidence["answered_by_hop"] = "service"
    kw = {"evidence": evidence, "address": where}
    svc = f"{target.service} -n {target.namespace}"
    seconds = timeout if timeout is not None else round(outcome.latency_ms / 1000, 1)

    if outcome.kind == "connected":
        return passed(
            f"connected to {where} in {outcome.latency_ms:g} ms",
            facts={facts.REACHABLE: True},
            **kw,
        )
    if outcome.kind == "reset":
        return failed(
            f"{where} answered with a TCP reset after {outcome.latency_ms:g} ms: the packets "
            "arrive, but nothing listens on the target port",
            remediation=(
                "The connection reached the pod (or what the ClusterIP is translated to) and "
                "was reset: no process listens on the target port there. Check the pod's "
                f"process and logs (`kubectl logs` for the pods of {svc}), and that the "
                "Service's targetPort is the port the container listens on "
                f"(`kubectl get service {svc} -o yaml`)."
            ),
            **kw,
        )
    if outcome.kind == "rejected" and outcome.icmp is not None:
        by = f"{outcome.icmp.sender} ({sender_hop})"
        if outcome.icmp.port_unreachable and sender_hop == "gateway":
            remedy = (
                "The gateway's kube-proxy rejects the connection: that is its rule for a "
                f"Service without ready endpoints. Check `kubectl get endpoints {svc}` and "
                "the pods' readiness; with --ssh k8sreach reads the gateway's rules."
            )
        else:
            remedy = (
                f"{outcome.icmp.sender} refuses the connection with ICMP "
                f"{outcome.icmp.meaning}: a firewall rule (REJECT) or kube-proxy's rule for "
                "a Service without endpoints on that host."
            )
        return failed(
            f"connection to {where} rejected on the way by {by}: ICMP {outcome.icmp.meaning}",
            remediation=remedy,
            **kw,
        )
    if outcome.kind == "refused":
        return failed(
            f"connection to {where} refused after {outcome.latency_ms:g} ms",
            remediation=(
                "Something on the path answered at once that nothing takes this connection: "
                "kube-proxy's REJECT for a Service without ready endpoints "
                f"(`kubectl get endpoints {svc}`), or no process listening on the pod's target "
                "port. (On Linux k8sreach tells these two apart.)"
            ),
            **kw,
        )
    if outcome.kind == "timeout":
        stop = ""
        if found is not None:
            path, stopped_at, sentence = localise(found, outcome.address, gateway, pod_cidrs)
            evidence.update(path=path, stopped_at_hop=stopped_at)
            stop = f"; {sentence}"
        elif trace_note:
            evidence["localisation"] = trace_note
        return failed(
            f"connection to {where} timed out after {seconds:g} s (no answer at all){stop}",
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
        if outcome.icmp is not None:
            return failed(
                f"{outcome.icmp.meaning} for {where}, said by {outcome.icmp.sender} ({sender_hop})",
                remediation=(
                    f"{outcome.icmp.sender} has no route onward to {outcome.address}. On that "
                    "host check its routes to the pods (`ip route get "
                    f"{outcome.address}`); on the gateway, the routes learned over BGP."
                ),
                **kw,
            )
        return failed(
            f"{outcome.unreachable} unreachable for {where} ({outcome.errno}): this client has "
            "no usable route",
            remediation=(
                f"This client reports {outcome.unreachable} unreachable for {outcome.address}. "
                "Check its route for the cluster ranges (`ip route get "
                f"{outcome.address}`)."
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
    """Connects to the Service's address and port and says who answered: connected, reset
    by the target, rejected on the way (ICMP, naming the sender and its hop), unreachable
    (naming the router), or a silent timeout; evidence: errno, ICMP sender, latency."""

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
        reason = trace.available()
        found = None
        if reason is None:
            outcome, found = _connect_and_trace(address, port, timeout)
        else:
            outcome = connect(address, port, timeout)
        return classify(
            outcome,
            ctx.target,
            round(timeout, 2),
            ctx.settings.gateway,
            ctx.settings.pod_cidr,
            found,
            reason,
        )


def _connect_and_trace(address: str, port: int, timeout: float) -> tuple[TcpOutcome, Trace | None]:
    """Connect; if no answer comes quickly, trace the path meanwhile, within the same timeout.

    A healthy connection is done in milliseconds and never starts the trace (nor imports
    scapy); a silent one has its trace ready when the connect times out.
    """
    done = threading.Event()
    traced = threading.Event()
    grace = min(0.3, timeout / 4)
    deadline = time.monotonic() + timeout
    box: list[Trace | None] = [None]

    def delayed() -> None:
        try:
            if not done.wait(grace):
                box[0] = trace.syn_trace(address, port, deadline)
        except Exception as exc:  # a trace that fails must not hide the connect's outcome
            LOG.debug("path trace failed: %s", exc, exc_info=True)
        finally:
            traced.set()

    # A daemon thread, not a pool: a trace that overruns is abandoned, never waited for.
    threading.Thread(target=delayed, name="path-trace", daemon=True).start()
    outcome = connect(address, port, timeout)
    done.set()
    if outcome.kind == "timeout":
        traced.wait(max(0.0, deadline + 0.3 - time.monotonic()))
    found = box[0]
    return outcome, found if outcome.kind == "timeout" else None
