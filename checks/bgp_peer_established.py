"""The `bgp-peer-established` check."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from checks import _gateway
from k8sreach import check as facts
from k8sreach.check import Check
from k8sreach.context import RunContext
from k8sreach.parsers.bird import parse_show_protocols_all
from k8sreach.parsers.calicoctl import parse_node_status
from k8sreach.parsers.errors import ParseError
from k8sreach.result import Finding, Hop, Status, failed, passed
from k8sreach.routes import Route, parse_ip_json_route

BGP_ROUTE_PROTOCOLS = ("bird", "bgp")

# The info text BIRD shows for a session that is not up, and what it usually means.
_CAUSES = (
    (
        "connection refused",
        "nothing listens on TCP 179 at the peer: BIRD or calico-node is "
        "not running there, or not configured to peer with the gateway",
    ),
    (
        "no route to host",
        "the peer's address cannot be reached from the gateway: a wrong peer "
        "address, or a firewall rejecting TCP 179",
    ),
    (
        "host is unreachable",
        "the peer's address cannot be reached from the gateway: a wrong "
        "peer address, or a firewall rejecting TCP 179",
    ),
    ("network is unreachable", "the gateway has no route to the peer's address"),
    ("connection timed out", "no answer from the peer on TCP 179: filtered, or the wrong address"),
    (
        "bad peer as",
        "AS number mismatch: the peer announces another AS than the one configured for it",
    ),
    (
        "bad bgp identifier",
        "duplicate router id: the peer and the gateway use the same BGP identifier",
    ),
    (
        "administrative shutdown",
        "the peer shut the session down (protocol disabled, or BIRD / calico-node stopping there)",
    ),
    (
        "hold timer expired",
        "keepalives stopped arriving: the path to the peer drops packets or the peer is overloaded",
    ),
)


@dataclass(frozen=True)
class PeerState:
    name: str
    address: str
    type: str
    state: str
    since: str
    info: str
    message: str

    @property
    def established(self) -> bool:
        return self.info == "Established"


def cause_of(peer: PeerState) -> str:
    """The usual cause of a session in this state with this message."""
    text = f"{peer.info} {peer.message}".lower()
    for needle, cause in _CAUSES:
        if needle in text:
            return cause
    if peer.info in ("Passive",) or peer.state == "start" and peer.info == "Passive":
        return (
            "this side only waits for the peer to connect (passive): if the peer is passive "
            "too, neither side opens the connection"
        )
    if peer.info in ("Connect", "Active"):
        return (
            "the gateway keeps trying to connect and gets no session: the peer does not "
            "answer on TCP 179 (filtered, wrong address, or not configured to peer)"
        )
    if peer.info == "Idle":
        return (
            "the session is idle: disabled, waiting after an error to retry, or both sides "
            "passive (`start`/`Idle` on both)"
        )
    return f"the session is {peer.info or peer.state}"


def _peer_type(name: str, fallback: str = "bgp") -> str:
    lowered = name.lower()
    if lowered.startswith("mesh_"):
        return "node-to-node mesh"
    if lowered.startswith("node_"):
        return "node specific"
    if lowered.startswith("global_"):
        return "global"
    return fallback


def peers_from_bird(text: str) -> list[PeerState]:
    details = parse_show_protocols_all(text)
    out = []
    for name, d in details.items():
        if d.protocol.proto.upper() != "BGP":
            continue
        out.append(
            PeerState(
                name=name,
                address=d.neighbor_address,
                type=_peer_type(name),
                state=d.protocol.state,
                since=d.protocol.since,
                info=d.bgp_state or d.protocol.info,
                message=d.protocol.message or d.last_error,
            )
        )
    return out


def peers_from_calicoctl(text: str) -> list[PeerState]:
    status = parse_node_status(text)
    return [
        PeerState(
            name=p.address,
            address=p.address,
            type=p.type,
            state=p.state,
            since=p.since,
            info=p.bgp_state,
            message=p.message,
        )
        for p in (*status.ipv4, *status.ipv6)
    ]


def learned_route(routes: list[Route], address: str) -> Route | None:
    """The BGP-learned route (proto bird) that covers `address`, if the kernel has one."""
    ip = ipaddress.ip_address(address)
    best = None
    for r in routes:
        if r.protocol not in BGP_ROUTE_PROTOCOLS or ip.version != r.destination.version:
            continue
        if ip in r.destination and (
            best is None or r.destination.prefixlen > best.destination.prefixlen
        ):
            best = r
    return best


def judge(
    peers: list[PeerState],
    routes: list[Route] | None,
    wanted: list[str],
    pod_cidrs: list[str],
    source: str,
) -> Finding:
    """Any peer not Established fails; Established without a learned route fails too."""
    evidence: dict[str, Any] = {
        "source": source,
        "peers": [
            {
                "name": p.name,
                "address": p.address,
                "type": p.type,
                "state": p.state,
                "since": p.since,
                "info": p.info,
                "message": p.message,
            }
            for p in peers
        ],
    }
    if not peers:
        return failed(
            f"{source} shows no BGP peers: the gateway does not peer with the cluster",
            evidence=evidence,
            remediation="Configure the gateway as a BGP peer of the cluster (a "
            "Calico BGPPeer for it, and the matching protocol in its BIRD).",
        )
    down = [p for p in peers if not p.established]
    if down:
        first = down[0]
        for p in down:
            evidence["peers"][peers.index(p)]["cause"] = cause_of(p)
        more = f" (and {len(down) - 1} more)" if len(down) > 1 else ""
        detail = f"{first.info} {first.message}".strip()
        return failed(
            f"BGP peer {first.address or first.name} ({first.type}) is {first.state}/{detail}: "
            f"{cause_of(first)}{more}",
            evidence=evidence,
            remediation=_peer_fix(down, source),
        )

    if routes is None:
        return passed(
            f"all {len(peers)} BGP peers Established (routes not read)", evidence=evidence
        )
    targets = wanted or []
    checked = {}
    for addr in targets:
        r = learned_route(routes, addr)
        checked[addr] = str(r.destination) + f" via {r.gateway}" if r else None
    evidence["learned_routes"] = checked
    bgp_routes = [
        f"{r.destination} via {r.gateway}" for r in routes if r.protocol in BGP_ROUTE_PROTOCOLS
    ][:50]
    evidence["bgp_routes"] = bgp_routes
    missing = [a for a, r in checked.items() if r is None]
    if not targets:
        inside = (
            [
                r
                for r in routes
                if r.protocol in BGP_ROUTE_PROTOCOLS
                and any(
                    r.destination.version == ipaddress.ip_network(c).version
                    and r.destination.subnet_of(ipaddress.ip_network(c))
                    for c in pod_cidrs
                )
            ]
            if pod_cidrs
            else []
        )
        if pod_cidrs and not inside:
            return _no_route(peers, ", ".join(pod_cidrs), evidence)
        return passed(
            f"all {len(peers)} BGP peers Established; {len(bgp_routes)} BGP routes"
            + ("" if pod_cidrs else " (no --pod-cidr given to check them against)"),
            evidence=evidence,
        )
    if missing:
        return _no_route(peers, ", ".join(missing), evidence)
    return passed(
        f"all {len(peers)} BGP peers Established; {targets[0]} is routed by BGP "
        f"({checked[targets[0]]})",
        evidence=evidence,
    )


def _no_route(peers: list[PeerState], what: str, evidence: dict[str, Any]) -> Finding:
    return failed(
        f"all {len(peers)} BGP peers Established, but the gateway has no BGP-learned route for "
        f"{what}",
        evidence=evidence,
        remediation=(
            "The sessions are up but the pod range is not advertised to the gateway. On a node, "
            "check what BIRD exports to the gateway (`birdc show route export <protocol>`), the "
            "IP pool's block routes (`calicoctl get ippool -o wide`) and any export filter in "
            "the BGP configuration; on the gateway, `birdc show route` shows what arrived and "
            "whether the kernel protocol imports it."
        ),
    )


def _peer_fix(down: list[PeerState], source: str) -> str:
    lines = []
    for p in down:
        lines.append(f"{p.address or p.name}: {cause_of(p)}.")
    lines.append(
        "On the gateway: `birdc show protocols all <name>` for the full state and last error; "
        "on the peer: `calicoctl node status`. After fixing, `birdc restart <name>` retries "
        "at once instead of waiting for BIRD's error wait time."
        if "bird" in source
        else "On the peer: `calicoctl node status` and `calicoctl get bgppeer -o yaml`."
    )
    return "\n".join(lines)


class BgpPeerEstablished(Check):
    """Reads the gateway's BGP sessions (birdc on BIRD's socket, or calicoctl node status):
    any peer not Established fails with its usual cause; Established without a BGP-learned
    route for the pods fails too. Evidence: each peer's address, type, state, since, info."""

    id = "bgp-peer-established"
    hop = Hop.GATEWAY
    order = 200
    needs = (facts.GATEWAY,)
    wants = (facts.ENDPOINTS, facts.ADDRESS)

    def run(self, ctx: RunContext) -> Finding:
        where = _gateway.label(ctx)
        found = _read_peers(ctx)
        if isinstance(found, Finding):
            return Finding(
                found.status, found.summary, found.evidence, found.remediation, address=where
            )
        peers, source = found
        routes = None
        shown = _gateway.run(ctx, ["ip", "-j", "route", "show", "table", "all"])
        if shown.returncode == 0:
            try:
                routes = parse_ip_json_route(shown.text)
            except Exception:  # a route dump we cannot read must not hide the peer states
                routes = None
        wanted = _pod_addresses(ctx)
        finding = judge(peers, routes, wanted, [str(c) for c in ctx.settings.pod_cidr], source)
        return Finding(
            finding.status, finding.summary, finding.evidence, finding.remediation, address=where
        )


def _pod_addresses(ctx: RunContext) -> list[str]:
    endpoints = [str(e).rsplit(":", 1)[0].strip("[]") for e in ctx.fact(facts.ENDPOINTS) or ()]
    if endpoints:
        return endpoints
    address = ctx.fact(facts.ADDRESS)
    if address and any(ipaddress.ip_address(address) in n for n in ctx.settings.pod_cidr):
        return [address]
    return []


def _read_peers(ctx: RunContext) -> tuple[list[PeerState], str] | Finding:
    sockets = (
        [ctx.settings.bird_socket] if ctx.settings.bird_socket else list(_gateway.BIRD_SOCKETS)
    )
    present = _gateway.run(ctx, ["find", *sockets, "-maxdepth", "0", "-type", "s"])
    existing = [s for s in present.text.splitlines() if s in sockets]
    for sock in existing:
        for client in ("birdc", "birdcl"):
            out = _gateway.run(ctx, [client, "-s", sock, "show", "protocols", "all"])
            if _gateway.missing_program(out):
                continue
            if out.returncode == 0 and "Unable to connect" not in out.text:
                try:
                    return peers_from_bird(out.text), f"{client} -s {sock}"
                except ParseError as exc:
                    return failed(
                        f"{client} answered something that is not BIRD's protocol table: {exc}",
                        evidence={"output": out.text[:2000]},
                    )
            break
    calico = _gateway.run(ctx, ["calicoctl", "node", "status"])
    if not _gateway.missing_program(calico) and calico.stdout:
        try:
            status = parse_node_status(calico.text)
        except ParseError as exc:
            return failed(
                f"calicoctl node status gave output k8sreach cannot read: {exc}",
                evidence={"output": calico.text[:2000]},
            )
        if not status.running:
            return failed(
                "calicoctl node status: Calico (BIRD) is not running on the gateway",
                evidence={"output": calico.text[:2000]},
                remediation="Start calico-node (or BIRD) on the gateway.",
            )
        return peers_from_calicoctl(calico.text), "calicoctl node status"
    looked = ", ".join(sockets)
    if ctx.settings.bird_socket:
        return failed(
            f"no BIRD control socket at {ctx.settings.bird_socket} on the gateway",
            remediation="Check --bird-socket, and that BIRD runs on the gateway.",
        )
    return Finding(
        Status.SKIP,
        f"no BIRD control socket ({looked}) and no calicoctl on the gateway: give "
        "--bird-socket PATH if BIRD runs elsewhere (flannel gateways have no BGP)",
    )
