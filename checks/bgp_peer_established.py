"""The `bgp-peer-established` check."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from checks import _gateway
from k8sreach import check as facts
from k8sreach.check import Check
from k8sreach.context import RunContext, Unavailable
from k8sreach.parsers.bird import parse_show_protocols_all
from k8sreach.parsers.calicoctl import parse_node_status
from k8sreach.parsers.errors import ParseError
from k8sreach.result import Finding, Hop, Status, failed, passed
from k8sreach.routes import Route, parse_ip_json_route

if TYPE_CHECKING:
    from k8sreach.remote import CommandResult

BGP_ROUTE_PROTOCOLS = ("bird", "bgp")
# birdc prints the server's greeting ("0001 BIRD 2.0.12 ready.") without its code
_BIRD_BANNER = re.compile(r"^BIRD .*ready\.$")

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
        return passed(f"{_all_up(peers)} (routes not read)", evidence=evidence)
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
                    and r.destination.subnet_of(ipaddress.ip_network(c))  # type: ignore[arg-type]
                    for c in pod_cidrs
                )
            ]
            if pod_cidrs
            else []
        )
        if pod_cidrs and not inside:
            return _no_route(peers, ", ".join(pod_cidrs), evidence)
        return passed(
            f"{_all_up(peers)}; {len(bgp_routes)} BGP route(s)"
            + ("" if pod_cidrs else " (no --pod-cidr given to check them against)"),
            evidence=evidence,
        )
    if missing:
        return _no_route(peers, ", ".join(missing), evidence)
    return passed(
        f"{_all_up(peers)}; {targets[0]} is routed by BGP ({checked[targets[0]]})",
        evidence=evidence,
    )


def _all_up(peers: list[PeerState]) -> str:
    return (
        "the BGP peer is Established"
        if len(peers) == 1
        else (f"all {len(peers)} BGP peers are Established")
    )


def _no_route(peers: list[PeerState], what: str, evidence: dict[str, Any]) -> Finding:
    return failed(
        f"{_all_up(peers)}, but the gateway has no BGP-learned route for {what}",
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
    route for the pods fails too. Without SSH to the gateway, reads the nodes' sessions with
    it from Calico's CalicoNodeStatus in the API. Evidence: each peer's address, type, state,
    since, info; for a BIRD socket birdc cannot read, what birdc printed."""

    id = "bgp-peer-established"
    hop = Hop.GATEWAY
    order = 200
    # No hard needs: the gateway over SSH when configured, else the cluster's API.
    wants = (facts.ENDPOINTS, facts.ADDRESS)

    def run(self, ctx: RunContext) -> Finding:
        where = _gateway.label(ctx)
        if not ctx.gateway_configured and ctx.cluster_configured:
            return self._from_api(ctx, where, None)
        try:
            found = _read_peers(ctx)
        except Unavailable as exc:
            if ctx.gateway_configured and ctx.cluster_configured:
                return self._from_api(ctx, where, exc.reason)
            raise
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

    @staticmethod
    def _from_api(ctx: RunContext, where: str, ssh_problem: str | None) -> Finding:
        """Judge the sessions calico-node reports in CalicoNodeStatus (no SSH to the gateway)."""
        from checks._common import api_reason
        from k8sreach.cluster import ClusterError

        if ssh_problem is None:
            try:
                ctx.gateway()
            except Unavailable as exc:  # not configured: the usual "give --ssh DEST" reason
                ssh_problem = exc.reason
        try:
            statuses = ctx.cluster().list_calico_node_statuses()
        except Unavailable as exc:
            raise Unavailable(f"{ssh_problem}; {exc.reason}") from None
        except ClusterError as exc:
            raise Unavailable(
                f"{ssh_problem}; and the API gives no BGP state: {api_reason(exc)}"
            ) from None
        try:
            finding = judge_calico(
                statuses, ctx.settings.gateway, [str(c) for c in ctx.settings.pod_cidr]
            )
        except Unavailable as exc:
            raise Unavailable(f"{ssh_problem}; {exc.reason}") from None
        evidence = {**finding.evidence, "gateway_access": ssh_problem}
        return Finding(
            finding.status, finding.summary, evidence, finding.remediation, address=where
        )


_CALICO_PEER_TYPES = {
    "NodeMesh": "node-to-node mesh",
    "NodePeer": "node specific",
    "GlobalPeer": "global",
}
NO_CALICO_STATUS = (
    "the API has no CalicoNodeStatus: create one per node (spec.node, classes [BGP]) so "
    "calico-node reports its BGP sessions there, or give --ssh DEST"
)


def peers_from_calico(
    statuses: list[dict[str, Any]], gateway: str | None = None
) -> tuple[list[PeerState], list[PeerState]]:
    """Return (the nodes' sessions with the gateway, their other sessions) from
    CalicoNodeStatus objects: with `gateway` given and reported as a peer, its sessions;
    else every peer outside the node-to-node mesh (a BGPPeer, as the gateway is)."""
    found: list[PeerState] = []
    for obj in statuses:
        node = str((obj.get("spec") or {}).get("node") or (obj.get("metadata") or {}).get("name"))
        bgp = (obj.get("status") or {}).get("bgp") or {}
        for entry in [*(bgp.get("peersV4") or []), *(bgp.get("peersV6") or [])]:
            state = str(entry.get("state") or "")
            found.append(
                PeerState(
                    name=node,
                    address=str(entry.get("peerIP") or ""),
                    type=_CALICO_PEER_TYPES.get(str(entry.get("type")), str(entry.get("type"))),
                    # the resource gives the BGP state only; BIRD's protocol state follows it
                    state="up" if state == "Established" else "start",
                    since=str(entry.get("since") or ""),
                    info=state,
                    message="",
                )
            )
    chosen = [p for p in found if gateway and p.address == gateway]
    if not chosen:
        chosen = [p for p in found if p.type != _CALICO_PEER_TYPES["NodeMesh"]]
    return chosen, [p for p in found if p not in chosen]


def calico_cause(peer: PeerState) -> str:
    """The usual cause of a session in this BGP state, seen from the node's side."""
    if peer.info in ("Active", "Connect"):
        return (
            f"calico-node on {peer.name} keeps trying to connect to {peer.address} and gets no "
            "session: nothing answers on TCP 179 there (BIRD not running, not configured to "
            "peer with this node, or filtered)"
        )
    if peer.info in ("OpenSent", "OpenConfirm"):
        return (
            "the session stops while the two sides negotiate: they disagree on the AS numbers "
            "or the router id"
        )
    if peer.info == "Idle":
        return "the session is idle: disabled, or waiting after an error before it retries"
    if peer.info == "Close":
        return "the session is being closed"
    return f"the session is {peer.info or 'in an unknown state'}"


def judge_calico(
    statuses: list[dict[str, Any]], gateway: str | None, pod_cidrs: list[str]
) -> Finding:
    """Judge the gateway's BGP sessions as the nodes report them in CalicoNodeStatus."""
    if not statuses:
        raise Unavailable(NO_CALICO_STATUS)
    reported = [s for s in statuses if (s.get("status") or {}).get("lastUpdated")]
    nodes = [
        {
            "node": (s.get("spec") or {}).get("node") or (s.get("metadata") or {}).get("name"),
            "last_updated": (s.get("status") or {}).get("lastUpdated"),
            "bird": (((s.get("status") or {}).get("agent") or {}).get("birdV4") or {}).get("state"),
        }
        for s in statuses
    ]
    if not reported:
        raise Unavailable(
            "the CalicoNodeStatus resources have no status yet: calico-node has not reported "
            "(their classes must include BGP)"
        )
    peers, others = peers_from_calico(reported, gateway)
    names = ", ".join(sorted({str(n["node"]) for n in nodes}))
    source = f"CalicoNodeStatus ({names})"
    finding = judge(peers, None, [], pod_cidrs, source)
    evidence = {
        **finding.evidence,
        "nodes": nodes,
        "other_sessions": [
            {"node": p.name, "address": p.address, "type": p.type, "info": p.info} for p in others
        ],
    }
    for doc in evidence["peers"]:
        doc["node"] = doc["name"]
    if not peers:
        return failed(
            f"no node reports a BGP session with the gateway in {source}",
            evidence=evidence,
            remediation="Configure the gateway as a BGP peer of the cluster: a Calico BGPPeer "
            "for it (`calicoctl get bgppeer -o wide`), and the matching protocol in its BIRD.",
        )
    down = [p for p in peers if not p.established]
    if down:
        first = down[0]
        for doc, p in zip(evidence["peers"], peers, strict=True):
            if not p.established:
                doc["cause"] = calico_cause(p)
        fixes = [f"{p.name} -> {p.address}: {calico_cause(p)}." for p in down]
        fixes.append(
            f"On the gateway: `birdc show protocols all` for its side of the session and the "
            f"last error; on {first.name}: `calicoctl node status`."
        )
        return failed(
            f"{first.name} reports its BGP session with {first.address} ({first.type}) "
            f"{first.info or 'not established'}: {calico_cause(first)}"
            + (f" (and {len(down) - 1} more)" if len(down) > 1 else ""),
            evidence=evidence,
            remediation="\n".join(fixes),
        )
    shown = ", ".join(f"{p.name} -> {p.address}" for p in peers[:3])
    more = f" and {len(peers) - 3} more" if len(peers) > 3 else ""
    return passed(
        f"all {len(peers)} BGP sessions with the gateway Established as the nodes report them "
        f"in CalicoNodeStatus ({shown}{more}); the gateway's routes are not read without SSH",
        evidence=evidence,
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
    given = ctx.settings.bird_socket
    sockets = [given] if given else list(_gateway.BIRD_SOCKETS)
    # find takes a leading '-' or '(' as an expression, not a path: only absolute paths go.
    if given and not given.startswith("/"):
        return failed(
            f"--bird-socket {given!r} is not an absolute path",
            remediation="Give BIRD's control socket as an absolute path, e.g. "
            "--bird-socket /run/bird/bird.ctl",
        )
    sockets = [s for s in sockets if s.startswith("/")]
    present = _gateway.run(ctx, ["find", *sockets, "-maxdepth", "0", "-type", "s"])
    existing = [s for s in present.text.splitlines() if s in sockets]
    problem: Finding | None = None
    for sock in existing:
        for client in ("birdc", "birdcl"):
            out = _gateway.run(ctx, [client, "-s", sock, "show", "protocols", "all"])
            if _gateway.missing_program(out):
                continue
            said = _birdc_failure(out, ctx.probe_timeout())
            if said is None:
                try:
                    return peers_from_bird(out.text), f"{client} -s {sock}"
                except ParseError as exc:
                    return failed(
                        f"{client} answered something that is not BIRD's protocol table: {exc}",
                        evidence={"output": out.text[:2000]},
                    )
            problem = problem or _birdc_failed(client, sock, out, said)
            break
        else:
            problem = problem or _no_birdc(sock)
        if problem is not None and out.timed_out:
            break  # a hung BIRD hangs on every path to its socket: do not wait again
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
    if problem is not None:
        return problem
    looked = ", ".join(sockets)
    if given:
        return failed(
            f"no BIRD control socket at {given} on the gateway",
            remediation="Check --bird-socket, and that BIRD runs on the gateway.",
        )
    return Finding(
        Status.SKIP,
        f"no BIRD control socket ({looked}) and no calicoctl on the gateway: give "
        "--bird-socket PATH if BIRD runs elsewhere (flannel gateways have no BGP)",
    )


def _birdc_failure(out: CommandResult, timeout: float) -> str | None:
    """Return one line on why birdc gave no protocol table, or None when it did."""
    if out.timed_out or out.returncode is None:
        return f"timed out after {timeout:g} s"
    lines = [
        ln.strip()
        for ln in (*out.err_text.splitlines(), *out.text.splitlines())
        if ln.strip() and not _BIRD_BANNER.match(ln.strip())
    ]
    # birdc shows a reply line it cannot read as "??? <line>": not a BIRD reply
    foreign = [ln for ln in lines if ln.startswith("??? ")]
    if out.returncode == 0 and "Unable to connect" not in out.text and not foreign:
        return None
    if foreign and out.returncode == 0:
        said = f"a reply birdc cannot read: {foreign[0]}"
    else:
        said = next((ln for ln in lines if ln not in foreign), None) or (foreign or [""])[0]
    if len(said) > 160:
        said = said[:160] + "..."
    return said or f"exit {out.returncode} without output"


def _birdc_failed(client: str, sock: str, out: CommandResult, said: str) -> Finding:
    """Return the failure of a birdc run on a socket that exists."""
    return failed(
        f"{client} -s {sock} show protocols all failed: {said}",
        evidence={
            "socket": sock,
            "command": f"{client} -s {sock} show protocols all",
            "returncode": out.returncode,
            "timed_out": out.timed_out,
            "output": out.text[:2000],
            "stderr": out.err_text[:2000],
        },
        remediation=(
            f"BIRD's control socket {sock} exists on the gateway but BIRD does not answer on "
            f"it: check that BIRD (or calico-node) runs there and is not stuck "
            f"(`systemctl status bird`, its logs), and run `{client} -s {sock} show protocols "
            "all` on the gateway."
        ),
    )


def _no_birdc(sock: str) -> Finding:
    """Return the failure of a gateway with BIRD's socket but no client to read it."""
    return failed(
        f"BIRD's control socket {sock} exists, but neither birdc nor birdcl is installed on "
        "the gateway",
        evidence={"socket": sock},
        remediation="Install BIRD's client on the gateway (Debian/Ubuntu: the bird2 package "
        "ships birdc), or give k8sreach access to calicoctl there.",
    )
