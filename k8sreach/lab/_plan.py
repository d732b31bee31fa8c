"""The lab's fixed plan: addresses, Services and the kube-proxy rules derived from them."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

# Office LAN (a bridge in its own switch namespace).
OFFICE_CIDR = "192.168.77.0/24"
CLIENT_IP = "192.168.77.10"
GATEWAY_IP = "192.168.77.1"
DNS_PROXY_IP = "192.168.77.53"
# The office router: a next hop with a static neighbour entry whose MAC nobody owns, so what is
# sent there vanishes silently, like traffic the real office router drops.
OFFICE_ROUTER_IP = "192.168.77.254"
# A next hop for the wrong-hop fault: nobody answers ARP for it.
WRONG_HOP_IP = "192.168.77.2"

# Node network (a second bridge in a second switch namespace).
NODE_CIDR = "10.77.2.0/24"
GATEWAY_NODE_IP = "10.77.2.71"
DNS_PROXY_NODE_IP = "10.77.2.53"
NODE_IP = "10.77.2.68"
# The node network's upstream router, silent in the same way as the office router.
NODE_ROUTER_IP = "10.77.2.254"
BLACKHOLE_MAC = "02:00:5e:77:00:fe"

SERVICE_CIDR = "10.96.0.0/12"
POD_CIDR = "10.244.0.0/16"
POD_BLOCK = "10.244.1.0/24"
CLUSTER_DOMAIN = "cluster.local"

# Calico's pod-side next hop: every pod's default route points at this link-local address and
# the node's end of the veth answers ARP for it (proxy ARP).
CALICO_NEXT_HOP = "169.254.1.1"

BGP_AS = 64512
BAD_PEER_AS = 64513
GATEWAY_BGP_PROTOCOL = "node1"
NODE_BGP_PROTOCOL = "edge_gateway"

KUBE_PROXY_VERSION = "v1.29.3"
KUBE_PROXY_PATH = "/usr/local/bin/kube-proxy"

MYSQL_POD = "mysql-0"
MYSQL_POD_IP = "10.244.1.10"
MYSQL_PORT = 3306
MYSQL_BANNER = "mysql-0 k8sreach-lab mysqld 8.0.36"
KUBE_DNS_POD = "kube-dns"
KUBE_DNS_POD_IP = "10.244.1.20"
KUBE_DNS_IP = "10.96.0.10"
STALE_SERVICE_IP = "10.96.86.99"

# Namespace roles; the netns name of each is "<prefix>-<suffix>-<role>".
NS_PREFIX = "k8sr-"
ROLES = (
    "switch-office",
    "switch-node",
    "client",
    "gateway",
    "dnsproxy",
    "node",
    MYSQL_POD,
    KUBE_DNS_POD,
)


@dataclass(frozen=True)
class ServicePort:
    """One port of a ClusterIP Service with its single endpoint, as kube-proxy sees it."""

    namespace: str
    name: str
    port_name: str
    protocol: str
    cluster_ip: str
    port: int
    endpoint_ip: str
    endpoint_port: int

    @property
    def key(self) -> str:
        """Return kube-proxy's service port name, e.g. ``default/mysql-read:mysql``."""
        return f"{self.namespace}/{self.name}:{self.port_name}"

    @property
    def endpoint(self) -> str:
        """Return the endpoint as ``ip:port``."""
        return f"{self.endpoint_ip}:{self.endpoint_port}"

    @property
    def svc_chain(self) -> str:
        """Return the KUBE-SVC- chain name kube-proxy gives this service port."""
        return "KUBE-SVC-" + _chain_hash(self.key + self.protocol)

    @property
    def sep_chain(self) -> str:
        """Return the KUBE-SEP- chain name kube-proxy gives this service port's endpoint."""
        return "KUBE-SEP-" + _chain_hash(self.key + self.protocol + self.endpoint)

    def services_rule(self) -> str:
        """Return the nat KUBE-SERVICES rule (without -A CHAIN) that jumps to the SVC chain."""
        return (
            f"-d {self.cluster_ip}/32 -p {self.protocol} -m comment --comment "
            f'"{self.key} cluster IP" -m {self.protocol} --dport {self.port} -j {self.svc_chain}'
        )

    def reject_rule(self) -> str:
        """Return the filter KUBE-SERVICES rule kube-proxy writes when there are no endpoints."""
        return (
            f"-d {self.cluster_ip}/32 -p {self.protocol} -m comment --comment "
            f'"{self.key} has no endpoints" -m {self.protocol} --dport {self.port} '
            "-j REJECT --reject-with icmp-port-unreachable"
        )


MYSQL_READ = ServicePort(
    "default", "mysql-read", "mysql", "tcp", "10.96.86.83", 3306, MYSQL_POD_IP, MYSQL_PORT
)
KUBE_DNS_UDP = ServicePort(
    "kube-system", "kube-dns", "dns", "udp", KUBE_DNS_IP, 53, KUBE_DNS_POD_IP, 53
)
KUBE_DNS_TCP = ServicePort(
    "kube-system", "kube-dns", "dns-tcp", "tcp", KUBE_DNS_IP, 53, KUBE_DNS_POD_IP, 53
)
SERVICE_PORTS = (MYSQL_READ, KUBE_DNS_UDP, KUBE_DNS_TCP)


def _chain_hash(text: str) -> str:
    """Return the 16-character base32 digest kube-proxy appends to its per-service chains."""
    digest = hashlib.sha256(text.encode()).digest()
    return base64.b32encode(digest).decode()[:16]


def cali_name(pod: str) -> str:
    """Return a Calico-style host-side veth name for a pod (``cali`` + 11 hex digits)."""
    return "cali" + hashlib.sha1(pod.encode()).hexdigest()[:11]


def kube_proxy_rules(
    omit_nat: frozenset[str] = frozenset(), reject: frozenset[str] = frozenset()
) -> str:
    """Return an iptables-restore document shaped like kube-proxy's iptables mode.

    ``omit_nat`` names service ports (by key) whose nat KUBE-SERVICES jump is left out, as when
    kube-proxy stopped syncing; ``reject`` names service ports that get the no-endpoints REJECT
    rule in the filter table instead.
    """
    portals = '-m comment --comment "kubernetes service portals"'
    nat_chains = ["KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-MARK-MASQ"]
    nat_rules = [
        f"-A PREROUTING {portals} -j KUBE-SERVICES",
        f"-A OUTPUT {portals} -j KUBE-SERVICES",
        '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
        "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000",
        "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
        "-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0",
        '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" '
        "-j MASQUERADE --random-fully",
    ]
    filter_rules = [
        f"-A FORWARD -m conntrack --ctstate NEW {portals} -j KUBE-SERVICES",
        f"-A OUTPUT -m conntrack --ctstate NEW {portals} -j KUBE-SERVICES",
    ]
    for sp in SERVICE_PORTS:
        if sp.key in reject:
            filter_rules.append(f"-A KUBE-SERVICES {sp.reject_rule()}")
            continue
        nat_chains += [sp.svc_chain, sp.sep_chain]
        if sp.key not in omit_nat:
            nat_rules.append(f"-A KUBE-SERVICES {sp.services_rule()}")
        comment = f'-m comment --comment "{sp.key}"'
        nat_rules += [
            f'-A {sp.svc_chain} -m comment --comment "{sp.key} -> {sp.endpoint}" -j {sp.sep_chain}',
            f"-A {sp.sep_chain} -s {sp.endpoint_ip}/32 {comment} -j KUBE-MARK-MASQ",
            f"-A {sp.sep_chain} -p {sp.protocol} {comment} -m {sp.protocol} "
            f"-j DNAT --to-destination {sp.endpoint}",
        ]
    nat_rules.append(
        '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must '
        'be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS'
    )
    lines = ["*nat"]
    lines += [f":{c} ACCEPT [0:0]" for c in ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING")]
    lines += [f":{c} - [0:0]" for c in nat_chains]
    lines += nat_rules + ["COMMIT", "*filter"]
    lines += [f":{c} ACCEPT [0:0]" for c in ("INPUT", "FORWARD", "OUTPUT")]
    lines += [":KUBE-SERVICES - [0:0]"] + filter_rules + ["COMMIT", ""]
    return "\n".join(lines)
