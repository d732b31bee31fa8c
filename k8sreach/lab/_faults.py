"""The faults the lab can inject, each with its undo, and what the client sees."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from k8sreach.lab import _configs as C
from k8sreach.lab import _plan as P
from k8sreach.lab._proc import LabError, wait_until
from k8sreach.lab._wiring import client_service_routes

if TYPE_CHECKING:
    from k8sreach.lab.lab import Lab

_BGP_WAIT = 15.0


@dataclass(frozen=True)
class _Fault:
    """A fault: a one-line description of its effect, how to inject it and how to undo it."""

    description: str
    inject: Callable[[Lab], None]
    heal: Callable[[Lab], None]


# ---- client routes -------------------------------------------------------------------------


def _routes_removed(lab: Lab) -> None:
    """Delete the client's service and pod CIDR routes."""
    lab._ip("client", [f"route del {c}" for c in (P.SERVICE_CIDR, P.POD_CIDR)])


def _routes_healthy(lab: Lab) -> None:
    """Point the client's service and pod CIDR routes at the gateway again."""
    lab._ip("client", client_service_routes(P.GATEWAY_IP))
    # Forget the failed neighbour entry of the wrong hop, so the client is as it was.
    lab._ip("client", [f"neigh del {P.WRONG_HOP_IP} dev eth0"], check=False)


def _routes_wrong_hop(lab: Lab) -> None:
    """Point the client's service and pod CIDR routes at an address nobody answers for."""
    lab._ip("client", client_service_routes(P.WRONG_HOP_IP))


# ---- DNS -----------------------------------------------------------------------------------


def _restart(key: str) -> Callable[[Lab], None]:
    """Return an action that starts a stopped daemon again."""
    return lambda lab: lab._start_daemon(key)


def _stop(key: str) -> Callable[[Lab], None]:
    """Return an action that stops a daemon."""
    return lambda lab: lab._stop_daemon(key)


def _kube_dns_answers(ip: str) -> Callable[[Lab], None]:
    """Return an action that restarts kube-dns answering ``ip`` for mysql-read."""

    def action(lab: Lab) -> None:
        lab._stop_daemon("kube-dns/dnsmasq")
        lab._mysql_read_record = ip
        lab._start_daemon("kube-dns/dnsmasq")

    return action


_KUBE_DNS_KEYS = frozenset({P.KUBE_DNS_UDP.key, P.KUBE_DNS_TCP.key})


def _proxy_dnat_removed(lab: Lab) -> None:
    """Drop the DNS proxy's DNAT for the kube-dns ClusterIP."""
    lab._iptables("dnsproxy", P.kube_proxy_rules(omit_nat=_KUBE_DNS_KEYS))


def _proxy_rules_healthy(lab: Lab) -> None:
    """Restore the DNS proxy's kube-proxy rules and give it a fresh dnsmasq."""
    lab._iptables("dnsproxy", P.kube_proxy_rules())
    # dnsmasq folds a repeated query into the one still pending from the fault and does not
    # forward it again for a while, so the first queries after healing would time out.
    lab._stop_daemon("dnsproxy/dnsmasq")
    lab._start_daemon("dnsproxy/dnsmasq")


# ---- gateway forwarding and NAT ------------------------------------------------------------


def _gateway_rules(**kwargs: frozenset[str]) -> Callable[[Lab], None]:
    """Return an action that loads the gateway's kube-proxy rules with the given changes."""
    return lambda lab: lab._iptables("gateway", P.kube_proxy_rules(**kwargs))


def _gateway_rules_plus(*extra: str) -> Callable[[Lab], None]:
    """Return an action that loads the healthy gateway rules plus extra filter commands."""

    def action(lab: Lab) -> None:
        lab._iptables("gateway", P.kube_proxy_rules())
        for rule in extra:
            lab._run_checked("gateway", ["iptables", *rule.split()])

    return action


def _gateway_sysctl(key: str, value: int) -> Callable[[Lab], None]:
    """Return an action that sets a live sysctl on the gateway."""
    return lambda lab: lab._sysctls("gateway", {key: value})


def _persisted(text: str) -> Callable[[Lab], None]:
    """Return an action that rewrites the gateway's /etc/sysctl.conf (in place: bind mount)."""

    def action(lab: Lab) -> None:
        with open(lab.gateway_sysctl_conf, "r+") as conf:
            conf.truncate(0)
            conf.write(text)

    return action


# ---- BGP -----------------------------------------------------------------------------------


def _birdc_checked(lab: Lab, host: str, *args: str) -> str:
    """Run birdc on a host and return its output; raise LabError unless it succeeded."""
    proc = lab.birdc(host, *args)
    # birdc exits 0 even when BIRD rejects a command or a configuration; the text says so.
    if proc.returncode != 0 or "rror" in proc.stdout:
        raise LabError(f"birdc {' '.join(args)} on {host} failed: {proc.stdout or proc.stderr}")
    return proc.stdout


def _peer_disabled(lab: Lab) -> None:
    """Disable the node's BGP session to the gateway and wait until the route is gone."""
    _birdc_checked(lab, "node", "disable", P.NODE_BGP_PROTOCOL)
    lab.wait_route(present=False, timeout=_BGP_WAIT)


def _peer_enabled(lab: Lab) -> None:
    """Enable the node's BGP session again and wait for the route."""
    _birdc_checked(lab, "node", "enable", P.NODE_BGP_PROTOCOL)
    lab.wait_route(present=True, timeout=_BGP_WAIT)


def _node_bird(wait_present: bool, **kwargs: object) -> Callable[[Lab], None]:
    """Return an action that reconfigures the node's BIRD and waits for the gateway's route."""

    def action(lab: Lab) -> None:
        if wait_present and "Established" not in _gateway_peer(lab):
            # The gateway sits in its long error wait after the fault; start it over first,
            # so that it accepts the node's next connection.
            _birdc_checked(lab, "gateway", "restart", P.GATEWAY_BGP_PROTOCOL)
        lab._write_node_bird(**kwargs)
        _birdc_checked(lab, "node", "configure")
        lab.wait_route(present=wait_present, timeout=_BGP_WAIT)

    return action


def _gateway_peer(lab: Lab) -> str:
    """Return the gateway's BIRD status line for its peer."""
    out = lab.birdc("gateway", "show", "protocols", P.GATEWAY_BGP_PROTOCOL).stdout
    return next((x for x in out.splitlines() if x.startswith(P.GATEWAY_BGP_PROTOCOL)), "")


def _wait_bad_peer_as(lab: Lab) -> None:
    """Wait until the gateway reports the AS mismatch."""
    wait_until(
        lambda: "Bad peer AS" in _gateway_peer(lab),
        "the gateway's BIRD to report Bad peer AS",
        _BGP_WAIT,
    )


def _bad_peer_as(lab: Lab) -> None:
    """Give the node another AS number so the gateway refuses the session (Bad peer AS)."""
    _node_bird(False, local_as=P.BAD_PEER_AS)(lab)
    _wait_bad_peer_as(lab)


# ---- kube-proxy binary and SSH -------------------------------------------------------------


def _kube_proxy(variant: str) -> Callable[[Lab], None]:
    """Return an action that installs a kube-proxy stand-in on the gateway."""
    return lambda lab: lab._install_kube_proxy(variant)


_SSH_DROP = "-I INPUT 1 -p tcp -m tcp --dport 22 -j DROP"
_OFFICE_DROP = "-I INPUT 1 -i eth0 -j DROP"


_TABLE: dict[str, _Fault] = {
    "client-route-removed": _Fault(
        "client: routes for the service and pod CIDRs deleted; traffic follows the default "
        "route to a router that drops it (connect times out)",
        _routes_removed,
        _routes_healthy,
    ),
    "client-route-wrong-hop": _Fault(
        "client: service and pod CIDR routes point at 192.168.77.2, where nobody answers ARP "
        "(connect fails with 'No route to host' after about 3 s)",
        _routes_wrong_hop,
        _routes_healthy,
    ),
    "dns-proxy-stopped": _Fault(
        "DNS proxy: dnsmasq stopped; nothing listens on 53 (ICMP port unreachable: refused on "
        "a connected socket, a timeout for tools that do not connect their UDP socket)",
        _stop("dnsproxy/dnsmasq"),
        _restart("dnsproxy/dnsmasq"),
    ),
    "dns-upstream-broken": _Fault(
        "DNS proxy: still listens, but its DNAT to kube-dns is gone, so its upstream queries "
        "vanish (the client's query times out; dnsmasq sends no answer)",
        _proxy_dnat_removed,
        _proxy_rules_healthy,
    ),
    "kube-dns-stale": _Fault(
        "kube-dns: answers the stale address 10.96.86.99 for mysql-read (NOERROR, wrong A)",
        _kube_dns_answers(P.STALE_SERVICE_IP),
        _kube_dns_answers(P.MYSQL_READ.cluster_ip),
    ),
    "no-endpoints-reject": _Fault(
        "gateway: kube-proxy's no-endpoints REJECT rule for mysql-read, nat rule gone "
        "(connection refused at once, ICMP port unreachable from the gateway)",
        _gateway_rules(reject=frozenset({P.MYSQL_READ.key})),
        _gateway_rules(),
    ),
    "dnat-removed": _Fault(
        "gateway: nat KUBE-SERVICES rule for mysql-read deleted, as when kube-proxy stopped "
        "syncing (connect times out)",
        _gateway_rules(omit_nat=frozenset({P.MYSQL_READ.key})),
        _gateway_rules(),
    ),
    "pod-listener-stopped": _Fault(
        "mysql-0: the listener on 3306 is gone (connection refused: TCP RST from the pod)",
        _stop("mysql-0/listener"),
        _restart("mysql-0/listener"),
    ),
    "ip-forward-off": _Fault(
        "gateway: net.ipv4.ip_forward=0 live (connect times out)",
        _gateway_sysctl("net.ipv4.ip_forward", 0),
        _gateway_sysctl("net.ipv4.ip_forward", 1),
    ),
    "ip-forward-not-persisted": _Fault(
        "gateway: forwarding is on live, but /etc/sysctl.conf (read last) sets "
        "net.ipv4.ip_forward = 0 (traffic still works; breaks at the next boot)",
        _persisted(C.FORWARD_OFF_SYSCTL_CONF),
        _persisted(C.HEALTHY_SYSCTL_CONF),
    ),
    "forward-policy-drop": _Fault(
        "gateway: filter FORWARD policy DROP with ip_forward=1, as a container runtime sets it "
        "(connect times out)",
        _gateway_rules_plus("-P FORWARD DROP"),
        _gateway_rules(),
    ),
    "rp-filter-strict": _Fault(
        "gateway: net.ipv4.conf.all.rp_filter=1 (the lab's paths are symmetric, so traffic "
        "still works)",
        _gateway_sysctl("net.ipv4.conf.all.rp_filter", 1),
        _gateway_sysctl("net.ipv4.conf.all.rp_filter", 0),
    ),
    "bgp-peer-stopped": _Fault(
        "node: BGP session to the gateway disabled; the gateway's peer shows Active with "
        "'Received: Administrative shutdown' and the pod route is gone (connect times out)",
        _peer_disabled,
        _peer_enabled,
    ),
    "bgp-bad-peer-as": _Fault(
        "node: BIRD runs with AS 64513; the gateway refuses it with 'Bad peer AS' and has no "
        "pod route (connect times out)",
        _bad_peer_as,
        _node_bird(True),
    ),
    "pod-route-not-exported": _Fault(
        "node: BGP stays Established but exports nothing; the gateway has no route for "
        "10.244.1.0/24 (connect times out)",
        _node_bird(False, export_blocks=False),
        _node_bird(True),
    ),
    "kube-proxy-segfault": _Fault(
        "gateway: /usr/local/bin/kube-proxy dies with SIGSEGV and no Go trace (a shell reports "
        "'Segmentation fault', exit 139; ssh running it directly exits 255); sha256 differs",
        _kube_proxy("segfault"),
        _kube_proxy("good"),
    ),
    "kube-proxy-panic": _Fault(
        "gateway: /usr/local/bin/kube-proxy prints a Go nil-pointer panic with a goroutine "
        "trace and exits 2",
        _kube_proxy("panic"),
        _kube_proxy("good"),
    ),
    "kube-proxy-checksum-mismatch": _Fault(
        "gateway: /usr/local/bin/kube-proxy answers --version normally but its sha256 differs",
        _kube_proxy("mismatch"),
        _kube_proxy("good"),
    ),
    "ssh-down": _Fault(
        "gateway: sshd stopped (SSH connection refused)",
        _stop("gateway/sshd"),
        _restart("gateway/sshd"),
    ),
    "ssh-blackhole": _Fault(
        "gateway: TCP 22 dropped silently (SSH connect hangs until its timeout)",
        _gateway_rules_plus(_SSH_DROP),
        _gateway_rules(),
    ),
    "gateway-drop-all": _Fault(
        "gateway: drops everything from the office LAN and everything it would forward "
        "(ClusterIP, ping and SSH time out; DNS still works, BGP stays up)",
        _gateway_rules_plus("-P FORWARD DROP", _OFFICE_DROP),
        _gateway_rules(),
    ),
}

FAULTS: dict[str, str] = {name: fault.description for name, fault in _TABLE.items()}


def inject(lab: Lab, name: str) -> None:
    """Inject fault ``name`` into ``lab``."""
    _TABLE[name].inject(lab)


def heal(lab: Lab, name: str) -> None:
    """Undo fault ``name`` in ``lab``."""
    _TABLE[name].heal(lab)
