"""Links, addresses, routes and sysctls of the lab's namespaces."""

from __future__ import annotations

from typing import TYPE_CHECKING

from k8sreach.lab import _plan as P
from k8sreach.lab._proc import netns_argv, run, run_all, wait_until

if TYPE_CHECKING:
    from k8sreach.lab.lab import Lab

# A command for run_all: argv and the text to feed it on stdin (or None).
_Command = tuple[list[str], str | None]

PODS = ((P.MYSQL_POD, P.MYSQL_POD_IP), (P.KUBE_DNS_POD, P.KUBE_DNS_POD_IP))

# Explicit ifindexes, so that the two ends of a veth never share one. The kernel treats a
# carrier change on a device whose peer has its own ifindex as not urgent and delays it by up
# to a second; a bridge port stuck like that drops the first ARP and BGP's first connect.
_HOST_INDEX = {"eth0": 10, "eth1": 11}
_PORT_INDEX = {"client": 21, "gateway": 22, "dnsproxy": 23, "node": 24}
_CALI_INDEX = {P.MYSQL_POD: 31, P.KUBE_DNS_POD: 32}


def client_service_routes(via: str) -> list[str]:
    """Return ip commands that point the client's service and pod CIDR routes at ``via``."""
    return [f"route replace {cidr} via {via} dev eth0" for cidr in (P.SERVICE_CIDR, P.POD_CIDR)]


def _silent_default(router: str, dev: str) -> list[str]:
    """Return ip commands for a default route to a router whose MAC nobody owns."""
    return [
        f"route add default via {router} dev {dev}",
        f"neigh add {router} lladdr {P.BLACKHOLE_MAC} dev {dev} nud permanent",
    ]


def _veth(ns: dict[str, str], dev: str, switch: str, port: str, cidr: str) -> list[str]:
    """Return ip commands for a host's leg on a switch: veth, address, link up."""
    return [
        f"link add {dev} index {_HOST_INDEX[dev]} type veth "
        f"peer name {port} index {_PORT_INDEX[port]} netns {ns[switch]}",
        f"addr add {cidr} dev {dev}",
        f"link set {dev} up",
    ]


def _host_batches(ns: dict[str, str]) -> dict[str, list[str]]:
    """Return each host's ip batch: its switch legs, addresses and routes."""
    client = ["link set lo up"]
    client += _veth(ns, "eth0", "switch-office", "client", f"{P.CLIENT_IP}/24")
    client += _silent_default(P.OFFICE_ROUTER_IP, "eth0")
    client += client_service_routes(P.GATEWAY_IP)
    client += [f"route add {P.NODE_CIDR} via {P.GATEWAY_IP} dev eth0"]

    gateway = ["link set lo up"]
    gateway += _veth(ns, "eth0", "switch-office", "gateway", f"{P.GATEWAY_IP}/24")
    gateway += _veth(ns, "eth1", "switch-node", "gateway", f"{P.GATEWAY_NODE_IP}/24")
    # Traffic without a more specific route leaves for the upstream router and is lost there,
    # as in the field: a missing DNAT gives a timeout, not an ICMP error.
    gateway += _silent_default(P.NODE_ROUTER_IP, "eth1")

    dnsproxy = ["link set lo up"]
    dnsproxy += _veth(ns, "eth0", "switch-office", "dnsproxy", f"{P.DNS_PROXY_IP}/24")
    dnsproxy += _veth(ns, "eth1", "switch-node", "dnsproxy", f"{P.DNS_PROXY_NODE_IP}/24")
    dnsproxy += [f"route add {P.POD_CIDR} via {P.NODE_IP} dev eth1"]
    # Locally sent packets are routed before the OUTPUT DNAT, so the ClusterIP needs a route;
    # the default route on the node network also picks that network's source address.
    dnsproxy += _silent_default(P.NODE_ROUTER_IP, "eth1")

    node = ["link set lo up"]
    node += _veth(ns, "eth0", "switch-node", "node", f"{P.NODE_IP}/24")
    node += [f"route add {P.OFFICE_CIDR} via {P.GATEWAY_NODE_IP} dev eth0"]
    node += _silent_default(P.NODE_ROUTER_IP, "eth0")
    # Calico keeps a blackhole for its whole block and a /32 per local pod.
    node += [f"route add blackhole {P.POD_BLOCK}"]
    for pod, ip in PODS:
        cali = P.cali_name(pod)
        node += [
            f"link add {cali} index {_CALI_INDEX[pod]} type veth "
            f"peer name eth0 index {_HOST_INDEX['eth0']} netns {ns[pod]}",
            f"link set {cali} up",
            f"route add {ip}/32 dev {cali} scope link",
        ]
    return {"client": client, "gateway": gateway, "dnsproxy": dnsproxy, "node": node}


def _pod_batch(ip: str) -> list[str]:
    """Return a pod's ip batch: a /32 and Calico's default route via 169.254.1.1."""
    return [
        "link set lo up",
        f"addr add {ip}/32 dev eth0",
        "link set eth0 up",
        f"route add {P.CALICO_NEXT_HOP} dev eth0 scope link",
        f"route add default via {P.CALICO_NEXT_HOP} dev eth0",
    ]


def _sysctls(ns: dict[str, str]) -> list[_Command]:
    """Return the per-namespace sysctl commands set before any interface exists."""
    base = [
        "net.ipv4.conf.all.rp_filter=0",
        "net.ipv4.conf.default.rp_filter=0",
    ]
    # Redirects would teach the client a shortcut that outlives a healed fault.
    router = base + [
        "net.ipv4.ip_forward=1",
        "net.ipv4.conf.all.send_redirects=0",
        "net.ipv4.conf.default.send_redirects=0",
    ]
    values = {
        "client": base + ["net.ipv4.ip_forward=0"],
        "dnsproxy": base + ["net.ipv4.ip_forward=0"],
        "gateway": router,
        "node": router,
    }
    return [(netns_argv(ns[h], ["sysctl", "-q", "-w", *v]), None) for h, v in values.items()]


def _ip_batch(ns: str, commands: list[str]) -> _Command:
    """Return an ``ip -batch`` invocation for one namespace."""
    return ["ip", "-n", ns, "-batch", "-"], "\n".join(commands) + "\n"


def wire(lab: Lab) -> None:
    """Create links, addresses, routes and sysctls in every namespace of ``lab``."""
    ns = lab.ns
    bridge = ["link set lo up", "link add br0 type bridge", "link set br0 up"]
    first: list[_Command] = [_ip_batch(ns[s], bridge) for s in ("switch-office", "switch-node")]
    run_all(first + _sysctls(ns))

    run_all([_ip_batch(ns[h], cmds) for h, cmds in _host_batches(ns).items()])

    office = ["client", "gateway", "dnsproxy"]
    node_net = ["gateway", "dnsproxy", "node"]
    third: list[_Command] = [
        _ip_batch(ns["switch-office"], [f"link set {p} master br0 up" for p in office]),
        _ip_batch(ns["switch-node"], [f"link set {p} master br0 up" for p in node_net]),
    ]
    third += [_ip_batch(ns[pod], _pod_batch(ip)) for pod, ip in PODS]
    # The node's end of each pod veth answers ARP for 169.254.1.1 at once, as Calico sets it.
    cali = []
    for pod, _ in PODS:
        name = P.cali_name(pod)
        cali += [f"net.ipv4.conf.{name}.proxy_arp=1", f"net.ipv4.neigh.{name}.proxy_delay=0"]
    third.append((netns_argv(ns["node"], ["sysctl", "-q", "-w", *cali]), None))
    run_all(third)

    ports = {"switch-office": len(office), "switch-node": len(node_net)}
    wait_until(lambda: _forwarding(ns, ports), "the switches' ports to forward", 5.0)


def _forwarding(ns: dict[str, str], ports: dict[str, int]) -> bool:
    """Return whether every switch has all its ports in the forwarding state."""
    for switch, count in ports.items():
        out = run(["bridge", "-n", ns[switch], "-o", "link", "show"], check=False).stdout
        if out.count("state forwarding") < count:
            return False
    return True
