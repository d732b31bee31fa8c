"""Runbooks: for every kind of failure a check reports, what it means and the steps to fix it.

An entry's steps are templates with `<name>` placeholders (PLACEHOLDERS lists them). Filled
from a report (`context(report)`), they carry the real addresses; without one they stay as
readable markers. Steps run on the client carry a variant per client OS (Linux, macOS,
Windows); the others run on the gateway, the DNS proxy, a node or against the cluster.
`kind_of(result)` maps a failed or warned check result to its entry from its evidence.

Known shortcoming: the entries are written here, apart from the checks; a third-party check
gets no runbook (kind_of returns None for it) and the markdown report shows its own advice.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from k8sreach.result import CheckResult, Report, Status

LOG = logging.getLogger(__name__)

OS_NAMES = ("linux", "macos", "windows")
_OS_LABELS = {"linux": "Linux", "macos": "macOS", "windows": "Windows, elevated PowerShell"}
_ROUTE_SOURCE_OS = {
    "linux-proc": "linux",
    "linux-netlink": "linux",
    "macos-netstat": "macos",
    "windows-route-print": "windows",
}
_MARKER = re.compile(r"<([a-z][a-z0-9-]*)>")

# Every placeholder a template may use, with what it stands for (shown when left unfilled).
PLACEHOLDERS: dict[str, str] = {
    "service": "the Service's name",
    "namespace": "the Service's namespace",
    "fqdn": "the Service's absolute DNS name, with the trailing dot",
    "cluster-domain": "the cluster's DNS domain (cluster.local)",
    "target-arg": "the doctor target (name.namespace:port)",
    "service-ip": "the Service's ClusterIP (or the pod address probed)",
    "probe-ip": "an address in the cluster range, to test the route with",
    "port": "the port probed",
    "service-cidr": "the cluster's service CIDR",
    "cluster-cidr": "the cluster ranges the gateway forwards (pod and service CIDRs)",
    "gateway-ip": "the edge gateway's address, the next hop for the cluster ranges",
    "gateway-host": "the edge gateway (its address or ssh name)",
    "route-cidr": "the cluster range to route via the gateway",
    "route-address": "that range's network address",
    "route-netmask": "that range's netmask",
    "route-netstat": "that range as macOS netstat shows it",
    "route-yaml": "that range as a netplan route",
    "win-active-row": "the route as `route print -4` lists it under Active Routes",
    "win-persistent-row": "the route as `route print -4` lists it under Persistent Routes",
    "mac-routes": "destination, netmask and gateway of each range, for networksetup",
    "matched-route": "the route that matches now",
    "wrong-route": "the route that sends the traffic to another next hop",
    "wrong-address": "that route's network address",
    "wrong-netmask": "that route's netmask",
    "client-dev": "this client's interface toward the gateway",
    "linux-dev-line": "how to find the interface toward the gateway (Linux)",
    "mac-dev-line": "how to find the interface toward the gateway (macOS)",
    "mac-service-line": "how to find the macOS network service of that interface",
    "win-ifindex-line": "how to find the Windows interface index toward the gateway",
    "dns-ip": "the DNS server that was asked",
    "dns-port": "its port",
    "dns-proxy-ip": "the DNS proxy's address (the DNS server clients must use)",
    "kube-dns-ip": "kube-dns's ClusterIP (`kubectl -n kube-system get service kube-dns`)",
    "dns-answer": "the address DNS answered",
    "answered-by": "the address that sent the ICMP error",
    "sysctl-file": "the sysctl file that sets net.ipv4.ip_forward to something else than 1",
    "sysctl-line": "its line number",
    "rp-iface": "an interface with strict rp_filter",
    "nft-chain": "the nftables chain that drops forwarded traffic (family table chain)",
    "peer-ip": "the BGP peer's address",
    "peer-name": "the BGP protocol's name in BIRD on the gateway",
    "peer-info": "the BGP state and last message BIRD shows for the peer",
    "bird-socket": "BIRD's control socket on the gateway",
    "bird-client": "BIRD's client program (birdc or birdcl)",
    "local-as": "the gateway's AS number",
    "kube-proxy-path": "the kube-proxy binary on the gateway",
    "expected-sha256": "the sha256 the binary must have",
    "reference-node": "a node whose kube-proxy is the reference (ssh destination)",
    "gateway-arch": "the gateway's machine (`uname -m`)",
    "go-arch": "the gateway's architecture as Kubernetes downloads name it",
    "binary-arch": "the architecture the binary is built for",
    "kubernetes-version": "the cluster's Kubernetes version (`kubectl version`)",
    "proxy-mode": "what holds kube-proxy's rules (iptables, nftables, IPVS)",
    "selector": "the Service's label selector",
    "pod": "a pod behind the Service",
    "target-port": "the Service port's targetPort",
    "closest": "the Service name closest to the one asked for",
    "bgp-node": "the node at the other end of the BGP session",
    "node-port": "the Service port's nodePort",
    "node-ip": "a node's InternalIP",
    "lb-address": "the load balancer's address",
    "lb-hostname": "the load balancer's host name",
    "http-url": "the URL requested",
    "http-host": "the URL's host name",
    "controller-address": "the ingress controller's address the request went to",
    "controller-port": "the port the request went to",
    "backend-name": "the Ingress rule's backend Service",
    "backend-namespace": "that Service's namespace",
    "short-name": "the Service's short name (name.namespace)",
    "search-list": "the search list to set: svc.<cluster domain> first, then the current ones",
    "search-list-commas": "the same list, comma-separated",
    "search-list-ps": "the same list, as a PowerShell array's items",
    "node-protocol": "the BGP protocol for the gateway in the node's BIRD (`birdc show protocols`)",
}


@dataclass(frozen=True)
class PerOs:
    """Commands of a client step, one variant per client OS."""

    linux: str
    macos: str
    windows: str

    def pick(self, os_name: str) -> str:
        return str(getattr(self, os_name))


@dataclass(frozen=True)
class Step:
    """One thing to do, where to do it, and the commands (a PerOs on the client).

    `only_if` names a placeholder: with a report, the step is shown only when it is known
    ('!name': only when it is not); the generic runbook shows every step.
    """

    where: str  # client, dns-proxy, gateway, peer (a BGP peer), node, router, cluster
    text: str
    commands: str | PerOs = ""
    only_if: str | None = None


@dataclass(frozen=True)
class Entry:
    """The runbook for one kind of failure of one check."""

    id: str
    check: str
    title: str
    meaning: str
    steps: tuple[Step, ...]

    @property
    def where(self) -> tuple[str, ...]:
        """Where the steps run, in order, each once."""
        return tuple(dict.fromkeys(s.where for s in self.steps))


# --- the entries --------------------------------------------------------------------------------


def _client(text: str, linux: str, macos: str, windows: str, only_if: str | None = None) -> Step:
    return Step("client", text, PerOs(linux, macos, windows), only_if)


def _gw(text: str, commands: str = "", only_if: str | None = None) -> Step:
    return Step("gateway", text, commands, only_if)


def _kubectl(text: str, commands: str = "", only_if: str | None = None) -> Step:
    return Step("cluster", text, commands, only_if)


def _dns(text: str, commands: str = "") -> Step:
    return Step("dns-proxy", text, commands)


def _peer(text: str, commands: str = "") -> Step:
    return Step("peer", text, commands)


_ROUTE_ADD = _client(
    "Route <route-cidr> via the gateway <gateway-ip>; this takes effect at once.",
    linux="sudo ip route replace <route-cidr> via <gateway-ip>",
    macos="sudo route -n add -net <route-cidr> <gateway-ip>",
    windows="route ADD -p <route-address> MASK <route-netmask> <gateway-ip>\n"
    "# -p also stores it under Persistent Routes, so it survives a reboot",
)
_ROUTE_KEEP = _client(
    "Keep the route across reboots (use the one that manages this client's network).",
    linux="<linux-dev-line>\n"
    "# NetworkManager:\n"
    'CONN=$(nmcli -g GENERAL.CONNECTION device show "$DEV")\n'
    'sudo nmcli connection modify "$CONN" +ipv4.routes "<route-cidr> <gateway-ip>"\n'
    "# netplan: add under the interface in /etc/netplan/*.yaml, then `sudo netplan apply`\n"
    "#   routes:\n"
    "#     - <route-yaml>\n"
    "# ifupdown: add to the interface's stanza in /etc/network/interfaces\n"
    "#   up ip route replace <route-cidr> via <gateway-ip>",
    macos="<mac-dev-line>\n"
    "<mac-service-line>\n"
    "# the next command replaces the service's additional routes: add these to it\n"
    'networksetup -getadditionalroutes "$SERVICE"\n'
    'sudo networksetup -setadditionalroutes "$SERVICE" <mac-routes>',
    windows="# nothing more to do: route ADD -p stored it; it is listed under Persistent Routes\n"
    "route print -4\n"
    "#   <win-persistent-row>",
)
_ROUTE_VERIFY = _client(
    "Check that the route is used: the next hop must be <gateway-ip>.",
    linux="ip route get <probe-ip>    # must say: via <gateway-ip>",
    macos="route -n get <probe-ip>    # gateway: <gateway-ip>\n"
    "netstat -rn -f inet | grep '^<route-netstat> '    # <route-netstat>  <gateway-ip>  UGSc",
    windows="(Find-NetRoute -RemoteIPAddress <probe-ip>).NextHop    # must print <gateway-ip>\n"
    "route print -4    # Active Routes must list: <win-active-row>",
)
_ROUTE_DELETE_WRONG = _client(
    "Remove the route that sends the traffic elsewhere (`<matched-route>`). If a VPN client "
    "installed it, change the VPN's split-tunnel ranges instead: it puts the route back.",
    linux="sudo ip route del <wrong-route>",
    macos="sudo route -n delete -net <wrong-route>",
    windows="route DELETE <wrong-address> MASK <wrong-netmask>",
)
_DNS_USE_PROXY = _client(
    "Make this client ask the DNS proxy <dns-proxy-ip>: for the cluster domain only (first "
    "form), or for every name as the adapter's DNS server.",
    linux="<linux-dev-line>\n"
    "# systemd-resolved: names under <cluster-domain> go to the proxy\n"
    'sudo resolvectl dns "$DEV" <dns-proxy-ip>\n'
    "sudo resolvectl domain \"$DEV\" '~<cluster-domain>'\n"
    "# keep it (NetworkManager):\n"
    'CONN=$(nmcli -g GENERAL.CONNECTION device show "$DEV")\n'
    'sudo nmcli connection modify "$CONN" ipv4.dns <dns-proxy-ip> '
    "ipv4.dns-search '~<cluster-domain>'\n"
    "# without systemd-resolved: make `nameserver <dns-proxy-ip>` the first line of "
    "/etc/resolv.conf",
    macos="# names under <cluster-domain> only:\n"
    "sudo mkdir -p /etc/resolver\n"
    "echo 'nameserver <dns-proxy-ip>' | sudo tee /etc/resolver/<cluster-domain>\n"
    "# or every name, as the network service's DNS server:\n"
    "<mac-dev-line>\n"
    "<mac-service-line>\n"
    'sudo networksetup -setdnsservers "$SERVICE" <dns-proxy-ip>',
    windows="# names under <cluster-domain> only (Name Resolution Policy Table):\n"
    "Add-DnsClientNrptRule -Namespace '.<cluster-domain>' -NameServers <dns-proxy-ip>\n"
    "# or every name, as the adapter's DNS server:\n"
    "<win-ifindex-line>\n"
    "Set-DnsClientServerAddress -InterfaceIndex $idx -ServerAddresses <dns-proxy-ip>\n"
    "# the same with netsh:\n"
    "netsh interface ipv4 set dnsservers name=$idx source=static address=<dns-proxy-ip> "
    "validate=no",
)
_DNS_VERIFY = _client(
    "Check the answer, from the proxy and through this client's own resolver; it must be "
    "<service-ip>.",
    linux="dig @<dns-proxy-ip> <fqdn> +short\ngetent hosts <fqdn>",
    macos="dig @<dns-proxy-ip> <fqdn> +short\n"
    "dscacheutil -q host -a name <fqdn>    # the system resolver (dig ignores /etc/resolver)",
    windows="Resolve-DnsName <fqdn> -Server <dns-proxy-ip> -Type A\n"
    "Resolve-DnsName <fqdn> -Type A    # through this client's resolver\n"
    "nslookup <fqdn> <dns-proxy-ip>",
)
_DNS_FLUSH = _client(
    "Drop this client's cached answers.",
    linux="sudo resolvectl flush-caches    # systemd-resolved; nscd: sudo nscd -i hosts",
    macos="sudo dscacheutil -flushcache; sudo killall -HUP mDNSResponder",
    windows="Clear-DnsClientCache    # or: ipconfig /flushdns",
)
_DNS_ASK = _dns(
    "Ask the DNS server directly, from the DNS proxy itself or from this client.",
    "dig @<dns-ip> -p <dns-port> <fqdn>",
)
_DNS_LISTENS = _dns(
    "See what listens on the DNS port, and start the proxy's service if nothing does "
    "(nginx with a UDP stream to kube-dns, or dnsmasq).",
    "ss -ulpn 'sport = :<dns-port>'\nss -tlpn 'sport = :<dns-port>'\n"
    "systemctl status nginx dnsmasq --no-pager\nsudo systemctl restart nginx    # or dnsmasq",
)
_DNS_UPSTREAM = _dns(
    "Ask kube-dns directly from the DNS proxy: if this fails too, the proxy cannot reach "
    "kube-dns (its route to the service CIDR via the gateway, or kube-dns itself).",
    "dig @<kube-dns-ip> <fqdn>\nip route get <kube-dns-ip>",
)
_KUBE_DNS = _kubectl(
    "Check kube-dns: its pods, its endpoints and its logs.",
    "kubectl -n kube-system get service kube-dns -o wide\n"
    "kubectl -n kube-system get pods -l k8s-app=kube-dns -o wide\n"
    "kubectl -n kube-system logs -l k8s-app=kube-dns --tail=50",
)
_SVC_SHOW = _kubectl(
    "Compare with what the API says about the Service.",
    "kubectl get service <service> -n <namespace> -o wide",
)
_GW_FORWARDING = _gw(
    "Check what the gateway does with forwarded traffic.",
    "sysctl net.ipv4.ip_forward\niptables -S FORWARD | head -n 20\n"
    "iptables-save -t nat | grep -e '<service-ip>'\nip route show proto bird",
)
_ENDPOINTS_SHOW = _kubectl(
    "See the Service's endpoints and the pods its selector matches.",
    "kubectl get endpointslices -n <namespace> -l kubernetes.io/service-name=<service>\n"
    "kubectl get pods -n <namespace> -l <selector> -o wide",
)
_PODS_WHY = _kubectl(
    "See why a pod is not Ready: its events, its readiness probe and its logs.",
    "kubectl describe pod <pod> -n <namespace>\nkubectl logs <pod> -n <namespace> --tail=50",
)
_KP_SYNC = _gw(
    "Check that kube-proxy runs and syncs its rules (its metrics show the last sync).",
    "systemctl status kube-proxy --no-pager\njournalctl -u kube-proxy -n 50 --no-pager\n"
    "curl -s http://127.0.0.1:10249/metrics | grep sync_proxy_rules_last_timestamp\n"
    "curl -s http://127.0.0.1:10256/healthz",
)
_KP_RULES_VERIFY = _gw(
    "Check the rules for <service-ip>:<port> (kube-proxy's DNAT to the endpoints, no REJECT).",
    "iptables-save -t nat | grep -e '<service-ip>/32'\n"
    "iptables-save -t filter | grep -e 'has no endpoints'\n"
    "ipvsadm -Ln -t <service-ip>:<port>    # IPVS mode only",
)
_BGP_SHOW = _gw(
    "See the session's full state and last error.",
    "<bird-client> -s <bird-socket> show protocols all <peer-name>",
)
_BGP_RESTART = _gw(
    "After the fix, retry the session at once instead of waiting for BIRD's error wait time, "
    "and check that it is Established and the pod routes arrived.",
    "<bird-client> -s <bird-socket> restart <peer-name>\n"
    "<bird-client> -s <bird-socket> show protocols <peer-name>\nip route show proto bird",
)
_BGP_PEER_STATUS = _peer(
    "See the session from the peer's side.",
    "calicoctl node status\nkubectl -n kube-system get pods -l k8s-app=calico-node -o wide",
)
_KP_COPY = _gw(
    "Copy kube-proxy again from a node, check it and restart kube-proxy.",
    "scp <reference-node>:<kube-proxy-path> /tmp/kube-proxy.new\n"
    "sha256sum /tmp/kube-proxy.new    # must print <expected-sha256>\n"
    "install -m 0755 /tmp/kube-proxy.new <kube-proxy-path>\n"
    "systemctl restart kube-proxy",
)
_KP_VERSION = _gw(
    "Check that the binary runs.",
    "<kube-proxy-path> --version\nsystemctl status kube-proxy --no-pager",
)
_DOCTOR_VERBOSE = _client(
    "Run the check again with every probe and answer shown.",
    linux="k8sreach doctor <target-arg> -v",
    macos="k8sreach doctor <target-arg> -v",
    windows="k8sreach doctor <target-arg> -v",
)


def _e(id: str, check: str, title: str, meaning: str, *steps: Step) -> Entry:
    return Entry(id, check, title, " ".join(meaning.split()), steps)


_ROUTE_ENTRIES = (
    _e(
        "route-missing",
        "route-present",
        "no route at all for the cluster ranges",
        """The client's routing table has no route for the address or range, not even a
        default route, so the client cannot send anything there.""",
        _ROUTE_ADD,
        _ROUTE_KEEP,
        _ROUTE_VERIFY,
    ),
    _e(
        "route-default-only",
        "route-present",
        "only the default route matches the cluster ranges",
        """No route sends the cluster ranges to the edge gateway: the packets follow the
        default route (`<matched-route>`) to a router that knows nothing of the cluster and
        drops them.""",
        _ROUTE_ADD,
        _ROUTE_KEEP,
        _ROUTE_VERIFY,
    ),
    _e(
        "route-other-next-hop",
        "route-present",
        "the cluster ranges are routed via another next hop",
        """A route sends the cluster ranges somewhere else than the edge gateway
        (`<matched-route>`): a stale static route, or a VPN that claims the range.""",
        _ROUTE_DELETE_WRONG,
        _ROUTE_ADD,
        _ROUTE_KEEP,
        _ROUTE_VERIFY,
    ),
    _e(
        "route-table-unreadable",
        "route-present",
        "the client's routing table could not be read",
        """k8sreach could not read this client's routing table (the command failed or its
        output was not understood), so the route was not judged.""",
        _client(
            "Read the routing table by hand.",
            linux="ip route show table main\ncat /proc/net/route",
            macos="netstat -rn -f inet",
            windows="route print -4",
        ),
        _DOCTOR_VERBOSE,
    ),
)

_DNS_ENTRIES = (
    _e(
        "dns-no-server",
        "dns-resolves",
        "this client has no DNS server configured",
        """The client has no resolver to ask, so no name resolves. Give --dns to ask the
        DNS proxy directly, and configure it as the client's DNS server.""",
        _DNS_USE_PROXY,
        _DNS_VERIFY,
    ),
    _e(
        "dns-timeout",
        "dns-resolves",
        "the DNS server does not answer",
        """The DNS server <dns-ip> sent nothing back in time: it is down, a firewall drops
        UDP <dns-port> on the way, or (for the DNS proxy) its upstream kube-dns does not
        answer it and it stays silent.""",
        _DNS_ASK,
        _DNS_LISTENS,
        _DNS_UPSTREAM,
        _KUBE_DNS,
    ),
    _e(
        "dns-not-listening",
        "dns-resolves",
        "nothing listens on the DNS server's port",
        """The host <dns-ip> answered with ICMP port unreachable: it is up, but no process
        listens on UDP <dns-port>. The DNS proxy is stopped, or listens elsewhere.""",
        _DNS_LISTENS,
        _DNS_ASK,
    ),
    _e(
        "dns-server-unreachable",
        "dns-resolves",
        "the DNS server cannot be reached from this client",
        """The client (or a router on the way) reports network or host unreachable for
        the DNS server <dns-ip>: the client has no usable route to it.""",
        _client(
            "See which route the client uses for the DNS server, and whether it answers.",
            linux="ip route get <dns-ip>\nping -c 3 <dns-ip>",
            macos="route -n get <dns-ip>\nping -c 3 <dns-ip>",
            windows="Find-NetRoute -RemoteIPAddress <dns-ip>\nTest-Connection <dns-ip> -Count 3",
        ),
    ),
    _e(
        "dns-nxdomain",
        "dns-resolves",
        "the name does not exist (NXDOMAIN)",
        """The DNS server says <fqdn> does not exist: no such Service in that namespace
        (a misspelt name or namespace), or a headless Service whose pods are not ready.""",
        _kubectl(
            "Check that the Service exists, and find it if it lives in another namespace.",
            "kubectl get service <service> -n <namespace>\n"
            "kubectl get services --all-namespaces --field-selector metadata.name=<service>",
        ),
        _kubectl(
            "For a headless Service, kube-dns has records only for ready pods.",
            "kubectl get endpoints <service> -n <namespace>",
        ),
        _DNS_ASK,
    ),
    _e(
        "dns-proxy-not-forwarding",
        "dns-resolves",
        "NXDOMAIN although the API has the Service",
        """The Service exists, yet the DNS server says the name does not: the server is
        not forwarding <cluster-domain> to kube-dns (it is not the DNS proxy, or the proxy's
        configuration lacks the zone), or the cluster domain is not <cluster-domain>.""",
        _DNS_ASK,
        _DNS_UPSTREAM,
        _kubectl(
            "Read the cluster domain kube-dns serves (give --cluster-domain if it differs).",
            "kubectl -n kube-system get configmap coredns -o jsonpath='{.data.Corefile}'",
        ),
        _DNS_USE_PROXY,
    ),
    _e(
        "dns-servfail",
        "dns-resolves",
        "the DNS server's upstream failed (SERVFAIL)",
        """The DNS server <dns-ip> answers but could not get an answer from its upstream:
        for the DNS proxy, kube-dns is unreachable from it or failing.""",
        _DNS_UPSTREAM,
        _KUBE_DNS,
        _dns("Read the proxy's log.", "journalctl -u nginx -u dnsmasq -n 50 --no-pager"),
    ),
    _e(
        "dns-refused",
        "dns-resolves",
        "the DNS server refuses the question (REFUSED)",
        """The DNS server <dns-ip> will not answer for <cluster-domain>: it is not the DNS
        proxy (a resolver that serves other zones only), or the proxy is not configured to
        forward the cluster domain.""",
        _DNS_ASK,
        _DNS_USE_PROXY,
        _DNS_VERIFY,
    ),
    _e(
        "dns-nodata",
        "dns-resolves",
        "the name exists but has no address (NODATA)",
        """kube-dns knows <fqdn> but returns no A record: a headless Service without ready
        pods, or a Service with IPv6 addresses only.""",
        _kubectl(
            "Check the Service's addresses and endpoints.",
            "kubectl get service <service> -n <namespace> -o wide\n"
            "kubectl get endpoints <service> -n <namespace>",
        ),
    ),
    _e(
        "dns-outside-cidr",
        "dns-resolves",
        "the DNS answer is not a cluster address",
        """The address DNS answered (<dns-answer>) is outside the service and pod CIDRs:
        the client asked a DNS server other than the DNS proxy (an office or public resolver
        with a wildcard or a search domain), so the answer is not the cluster's.""",
        _DNS_ASK,
        _SVC_SHOW,
        _DNS_USE_PROXY,
        _DNS_VERIFY,
    ),
    _e(
        "dns-stale",
        "dns-resolves",
        "the DNS answer differs from the API (stale record)",
        """DNS answers <dns-answer>, but the API says the Service's address is <service-ip>:
        a cache on the way (the DNS proxy, this client's resolver) or kube-dns holds an old
        record.""",
        _DNS_ASK,
        _SVC_SHOW,
        _dns(
            "Restart the DNS proxy to drop its cache (dnsmasq caches; nginx does not).",
            "sudo systemctl restart dnsmasq    # or nginx",
        ),
        _DNS_FLUSH,
        _KUBE_DNS,
        _DNS_VERIFY,
    ),
    _e(
        "dns-external-name",
        "dns-resolves",
        "the ExternalName Service's alias does not resolve as the API says",
        """The Service is an alias (CNAME) to another name; DNS did not answer that CNAME,
        or the name it points to has no address.""",
        _SVC_SHOW,
        _DNS_ASK,
    ),
    _e(
        "dns-cidr-setting-wrong",
        "dns-resolves",
        "the Service's addresses are outside the ranges given to k8sreach",
        """DNS and the API agree on the Service's address, but it is outside the
        --service-cidr/--pod-cidr given to k8sreach (or its profile): those settings are
        probably wrong, and checks that use them judge the wrong ranges.""",
        _kubectl(
            "Read the cluster's real ranges and correct the profile.",
            "kubectl cluster-info dump | grep -m 2 -e service-cluster-ip-range -e cluster-cidr",
        ),
    ),
)

_DNS_EXTRA_ENTRIES = (
    _e(
        "dns-udp-fails",
        "dns-resolves",
        "the DNS server answers over TCP but not over UDP",
        """Over TCP <dns-ip> answers, so it runs and reaches its upstream; UDP port
        <dns-port> is what fails: a firewall on the way drops or rejects it, or the proxy's
        UDP listener is missing. Resolvers ask over UDP first, so lookups fail.""",
        _DNS_LISTENS,
        _dns(
            "Compare the two transports.",
            "dig @<dns-ip> -p <dns-port> <fqdn>\ndig +tcp @<dns-ip> -p <dns-port> <fqdn>",
        ),
    ),
    _e(
        "dns-tcp-fails",
        "dns-resolves",
        "the DNS server answers over UDP only",
        """<dns-ip> answers over UDP but not over TCP: an answer too large for a datagram
        (a headless Service with many pods) comes back truncated, the resolver retries over
        TCP, and that fails. The proxy must listen on TCP <dns-port> too.""",
        _DNS_LISTENS,
        _dns("Check TCP.", "dig +tcp @<dns-ip> -p <dns-port> <fqdn>"),
    ),
    _e(
        "dns-srv-missing",
        "dns-resolves",
        "no SRV record for the named port",
        """kube-dns publishes an SRV record for each named TCP port of a Service; there is
        none for port '<port>', so its number is unknown: the port name is wrong, or the
        port is not TCP.""",
        _kubectl(
            "List the Service's port names (or give the port number to k8sreach).",
            "kubectl get service <service> -n <namespace> -o jsonpath='{.spec.ports[*].name}'",
        ),
    ),
)

_SEARCH_SET = _client(
    "Put svc.<cluster-domain> first in this client's search list (the list given replaces "
    "the current one: it keeps the current domains after the new one).",
    linux="<linux-dev-line>\n"
    "# systemd-resolved:\n"
    'sudo resolvectl domain "$DEV" <search-list>\n'
    "# keep it (NetworkManager):\n"
    'CONN=$(nmcli -g GENERAL.CONNECTION device show "$DEV")\n'
    'sudo nmcli connection modify "$CONN" ipv4.dns-search "<search-list-commas>"\n'
    "# without either: the line `search <search-list>` in /etc/resolv.conf",
    macos="<mac-dev-line>\n<mac-service-line>\n"
    'sudo networksetup -setsearchdomains "$SERVICE" <search-list>',
    windows="Set-DnsClientGlobalSetting -SuffixSearchList @(<search-list-ps>)\n"
    "Clear-DnsClientCache",
)
_SEARCH_VERIFY = _client(
    "Check that the short name now resolves as the FQDN does (to <service-ip>).",
    linux="getent hosts <short-name>",
    macos="scutil --dns | grep 'search domain'\ndscacheutil -q host -a name <short-name>",
    windows="Resolve-DnsName <short-name>",
)
_SEARCH_ENTRIES = (
    _e(
        "dns-search-wrong-answer",
        "dns-search",
        "the short name resolves to another address than the FQDN",
        """This client's resolver finds another name for <short-name> (a search domain
        tried before the cluster's) before the cluster's own: programs that use the short
        name reach the wrong address. A search-domain problem, not a DNS outage.""",
        _SEARCH_SET,
        _SEARCH_VERIFY,
    ),
    _e(
        "dns-search-not-found",
        "dns-search",
        "the short name does not resolve while the FQDN does",
        """The search list does not lead the resolver to <short-name>'s cluster name (no
        svc.<cluster-domain> in it, or the lookup stops early at a domain whose server
        refuses or times out): programs using the short name fail though DNS works.""",
        _SEARCH_SET,
        _SEARCH_VERIFY,
    ),
)

_KUBE_DNS_PATH = _client(
    "Check the route to kube-dns's ClusterIP: it must go via the gateway <gateway-ip>.",
    linux="ip route get <kube-dns-ip>",
    macos="route -n get <kube-dns-ip>",
    windows="(Find-NetRoute -RemoteIPAddress <kube-dns-ip>).NextHop",
)
_KUBE_DNS_ENTRIES = (
    _e(
        "kube-dns-proxy-differs",
        "kube-dns-direct",
        "the DNS proxy's answer is not kube-dns's",
        """kube-dns, the source of the cluster's records, answers otherwise than the DNS
        proxy: the proxy caches an old answer, or forwards <cluster-domain> to another
        server.""",
        _dns(
            "Compare the proxy's answer with kube-dns's, then restart the proxy to drop its cache.",
            "dig @<kube-dns-ip> <fqdn>\ndig @<dns-ip> -p <dns-port> <fqdn>\n"
            "sudo systemctl restart dnsmasq    # or nginx",
        ),
    ),
    _e(
        "kube-dns-down",
        "kube-dns-direct",
        "neither kube-dns nor the DNS proxy answers",
        """The DNS proxy fails because its upstream does: kube-dns does not answer this
        client either. kube-dns is down, or the path to its ClusterIP is broken.""",
        _KUBE_DNS,
        _KUBE_DNS_PATH,
    ),
    _e(
        "kube-dns-path-broken",
        "kube-dns-direct",
        "kube-dns does not answer through the route while the proxy does",
        """DNS works through the proxy, but kube-dns's ClusterIP <kube-dns-ip> is not
        reachable from this client: the path to the cluster is broken (the same path the
        connection to the Service takes), not DNS.""",
        _KUBE_DNS_PATH,
        _GW_FORWARDING,
    ),
    _e(
        "kube-dns-and-proxy-down",
        "kube-dns-direct",
        "the DNS proxy is down, and kube-dns does not answer directly either",
        """Two problems: the DNS proxy <dns-ip> does not answer, and kube-dns <kube-dns-ip>
        does not answer through the route. Fix the proxy first.""",
        _DNS_LISTENS,
        _KUBE_DNS,
        _KUBE_DNS_PATH,
    ),
    _e(
        "kube-dns-wrong-address",
        "kube-dns-direct",
        "the address asked may not be this cluster's kube-dns",
        """<kube-dns-ip> answers otherwise than the DNS proxy, which answers correctly: it
        is probably not this cluster's kube-dns (give --kube-dns with the right ClusterIP).""",
        _kubectl("Read kube-dns's ClusterIP.", "kubectl -n kube-system get service kube-dns"),
    ),
    _e(
        "kube-dns-no-answer",
        "kube-dns-direct",
        "kube-dns does not answer directly",
        """kube-dns <kube-dns-ip> gives no answer through the route (the proxy's answer was
        not there to compare): kube-dns is down, or the path to it is broken.""",
        _KUBE_DNS,
        _KUBE_DNS_PATH,
    ),
)

_FORWARDING_ENTRIES = (
    _e(
        "forwarding-off",
        "gateway-forwarding",
        "the gateway does not forward (ip_forward is 0)",
        """net.ipv4.ip_forward is 0 on the gateway: it drops every packet it would have to
        forward, so connections from the client to the cluster time out.""",
        _gw("Turn forwarding on now.", "sysctl -w net.ipv4.ip_forward=1"),
        _gw(
            "Keep it across reboots: <sysctl-file> line <sysctl-line> sets it otherwise.",
            "sed -i 's/^[[:space:]]*net\\.ipv4\\.ip_forward[[:space:]]*=.*/"
            "net.ipv4.ip_forward = 1/' <sysctl-file>",
            only_if="sysctl-file",
        ),
        _gw(
            "Keep it across reboots.",
            "echo 'net.ipv4.ip_forward = 1' > /etc/sysctl.d/99-ip-forward.conf",
            only_if="!sysctl-file",
        ),
        _gw(
            "Reload every sysctl file in boot order and check that it stays 1.",
            "sysctl --system >/dev/null && sysctl net.ipv4.ip_forward",
        ),
    ),
    _e(
        "forwarding-drop-policy",
        "gateway-forwarding",
        "the gateway's FORWARD policy is DROP",
        """The filter table's FORWARD chain drops by policy and no rule accepts the cluster
        ranges (or only rules tied to other interfaces or to replies do): forwarded
        connections vanish. Docker sets this policy every time it starts.""",
        _gw(
            "Accept the cluster ranges (in DOCKER-USER when Docker manages FORWARD, else "
            "Docker's next start puts its rules in front).",
            "iptables -S DOCKER-USER >/dev/null 2>&1 && CHAIN=DOCKER-USER || CHAIN=FORWARD\n"
            'iptables -I "$CHAIN" -d <cluster-cidr> -j ACCEPT\n'
            'iptables -I "$CHAIN" -s <cluster-cidr> -j ACCEPT',
        ),
        _gw(
            "Keep the rules across reboots.",
            "netfilter-persistent save    # Debian/Ubuntu (iptables-persistent)\n"
            "# RHEL-like: iptables-save > /etc/sysconfig/iptables",
        ),
        _gw("Check them.", "iptables -S \"$CHAIN\" | grep -e '<cluster-cidr>'"),
    ),
    _e(
        "forwarding-nft-drop",
        "gateway-forwarding",
        "an nftables forward chain drops by policy",
        """A native nftables chain on the forward hook (<nft-chain>) has policy drop and
        accepts nothing for the cluster ranges.""",
        _gw(
            "Accept the cluster ranges in that chain, then add the same rules to the file "
            "nftables loads at boot (/etc/nftables.conf).",
            "nft list chain <nft-chain>\n"
            "nft insert rule <nft-chain> ip daddr <cluster-cidr> accept\n"
            "nft insert rule <nft-chain> ip saddr <cluster-cidr> accept",
        ),
    ),
    _e(
        "forwarding-not-persisted",
        "gateway-forwarding",
        "forwarding is on now but off after the next reboot",
        """ip_forward is 1 now, but the sysctl files do not keep it: no file sets it, or a
        file read later sets it to 0. The gateway stops forwarding at the next boot or the
        next `sysctl --system`.""",
        _gw(
            "Fix the line that turns it off (<sysctl-file> line <sysctl-line>).",
            "grep -n ip_forward <sysctl-file>\n"
            "sed -i 's/^[[:space:]]*net\\.ipv4\\.ip_forward[[:space:]]*=.*/"
            "net.ipv4.ip_forward = 1/' <sysctl-file>",
            only_if="sysctl-file",
        ),
        _gw(
            "Set it in a sysctl file.",
            "echo 'net.ipv4.ip_forward = 1' > /etc/sysctl.d/99-ip-forward.conf",
            only_if="!sysctl-file",
        ),
        _gw(
            "Reload the files as a boot would; it must stay 1.",
            "sysctl --system >/dev/null && sysctl net.ipv4.ip_forward",
        ),
    ),
    _e(
        "rp-filter-strict",
        "gateway-forwarding",
        "strict reverse-path filtering on the path's interfaces",
        """rp_filter=1 (strict) drops a packet that arrives on another interface than the
        one the gateway would use to reach its source: with asymmetric routes, replies from
        the cluster vanish. Loose mode (2) keeps the spoofing protection and allows it.""",
        _gw(
            "Switch to loose mode now (the effective value is the higher of all and the "
            "interface's).",
            "sysctl -w net.ipv4.conf.all.rp_filter=2\n"
            "sysctl -w net.ipv4.conf.<rp-iface>.rp_filter=2",
        ),
        _gw(
            "Keep it across reboots.",
            "echo 'net.ipv4.conf.all.rp_filter = 2' > /etc/sysctl.d/99-rp-filter.conf\n"
            "echo 'net.ipv4.conf.<rp-iface>.rp_filter = 2' >> /etc/sysctl.d/99-rp-filter.conf",
        ),
    ),
)


def _bgp(id: str, title: str, meaning: str, *steps: Step) -> Entry:
    return _e(id, "bgp-peer-established", title, meaning, *steps)


_BGP_ENTRIES = (
    _bgp(
        "bgp-no-peers",
        "the gateway has no BGP peers",
        """BIRD on the gateway shows no BGP protocol: the gateway does not peer with the
        cluster, so it learns no routes to the pods.""",
        _gw(
            "Add a BGP protocol for each node to BIRD's configuration (or a route reflector), "
            "then reload it.",
            "grep -n 'protocol bgp' /etc/bird/bird.conf\nbirdc configure",
        ),
        _kubectl(
            "Make Calico peer with the gateway (a BGPPeer with the gateway's node-network "
            "address and AS).",
            "calicoctl get bgppeer -o wide\ncalicoctl get bgpconfiguration default -o yaml",
        ),
    ),
    _bgp(
        "bgp-peer-refused",
        "the BGP peer refuses the connection",
        """Nothing listens on TCP 179 at <peer-ip>: BIRD or calico-node is not running
        there, or is not configured to peer with the gateway.""",
        _BGP_SHOW,
        _BGP_PEER_STATUS,
        _peer("Check that BIRD listens on the peer.", "ss -ltnp 'sport = :179'"),
        _kubectl(
            "Check that Calico has a BGPPeer for the gateway.", "calicoctl get bgppeer -o wide"
        ),
        _BGP_RESTART,
    ),
    _bgp(
        "bgp-peer-unreachable",
        "the BGP peer cannot be reached",
        """The gateway gets network or host unreachable for <peer-ip>: a wrong peer
        address in BIRD's configuration, no route to the node network, or a firewall
        rejecting TCP 179.""",
        _BGP_SHOW,
        _gw(
            "Check the route and reachability to the peer.",
            "ip route get <peer-ip>\nping -c 3 <peer-ip>\niptables -S | grep -e 179",
        ),
        _BGP_RESTART,
    ),
    _bgp(
        "bgp-peer-no-answer",
        "the BGP peer does not answer on TCP 179",
        """The gateway keeps trying to connect to <peer-ip> (<peer-info>) and gets no
        session: TCP 179 is filtered on the way or at the peer, the address is wrong, or
        the peer is not configured to peer with the gateway.""",
        _BGP_SHOW,
        _gw("Test TCP 179 to the peer.", "nc -zv -w 3 <peer-ip> 179"),
        _peer(
            "Check the peer's firewall for TCP 179.",
            "iptables -S INPUT | grep -e 179 -e DROP",
        ),
        _BGP_PEER_STATUS,
        _BGP_RESTART,
    ),
    _bgp(
        "bgp-bad-peer-as",
        "the BGP peer's AS number does not match",
        """The peer <peer-ip> announces another AS than the one the gateway's configuration
        expects for it (Bad peer AS), so BIRD closes the session.""",
        _BGP_SHOW,
        _gw(
            "See the AS the gateway expects for the peer.",
            "grep -n -A 6 'protocol bgp <peer-name>' /etc/bird/bird.conf",
        ),
        _kubectl(
            "Read the cluster's AS (the default, and any node's own), then set `neighbor "
            "<peer-ip> as ...` in the gateway's protocol to it and run `birdc configure`.",
            "calicoctl get bgpconfiguration default -o yaml | grep asNumber\n"
            "calicoctl get nodes -o wide",
        ),
        _BGP_RESTART,
    ),
    _bgp(
        "bgp-duplicate-router-id",
        "the gateway and the peer use the same BGP router id",
        """Both sides use the same BGP identifier (Bad BGP identifier): the session cannot
        come up. Calico uses each node's IPv4 address as its router id.""",
        _gw(
            "See the gateway's router id, then give BIRD a unique `router id` and reload.",
            "<bird-client> -s <bird-socket> show status\n"
            "grep -n 'router id' /etc/bird/bird.conf\nbirdc configure",
        ),
        _BGP_PEER_STATUS,
        _BGP_RESTART,
    ),
    _bgp(
        "bgp-negotiation-failed",
        "the BGP session stops while the two sides negotiate",
        """The session gets as far as OpenSent or OpenConfirm and no further: the two sides
        disagree on the AS numbers or the router id.""",
        _gw(
            "See the AS and router id the gateway uses and expects.",
            "<bird-client> -s <bird-socket> show status\n"
            "grep -n -e 'router id' -e 'local as' -e neighbor /etc/bird/bird.conf",
        ),
        _kubectl(
            "Read the cluster's AS and the nodes' addresses (their router ids).",
            "calicoctl get bgpconfiguration default -o yaml | grep asNumber\n"
            "calicoctl get nodes -o wide",
        ),
        _BGP_RESTART,
    ),
    _bgp(
        "bgp-admin-shutdown",
        "the BGP peer shut the session down",
        """The peer <peer-ip> closed the session with Administrative shutdown: its BGP
        protocol is disabled, or BIRD or calico-node is stopping or restarting there.""",
        _BGP_SHOW,
        _BGP_PEER_STATUS,
        _peer(
            "See whether the protocol for the gateway is disabled, and enable it.",
            "birdc show protocols\nbirdc enable <node-protocol>",
        ),
        _BGP_RESTART,
    ),
    _bgp(
        "bgp-hold-timer-expired",
        "keepalives from the BGP peer stopped arriving",
        """The hold timer expired: the path to <peer-ip> drops packets, or the peer is
        overloaded.""",
        _BGP_SHOW,
        _gw("Look for packet loss to the peer.", "ping -c 20 <peer-ip>"),
        _BGP_PEER_STATUS,
    ),
    _bgp(
        "bgp-peer-passive",
        "the gateway's BGP session only waits for the peer",
        """The gateway's protocol is passive: it waits for the peer to connect. If the peer
        is passive too, neither side opens the session.""",
        _gw(
            "Find `passive on` in the gateway's protocol; remove it (or make the peer active) "
            "and reload.",
            "grep -n -A 6 'protocol bgp <peer-name>' /etc/bird/bird.conf\nbirdc configure",
        ),
        _BGP_PEER_STATUS,
        _BGP_RESTART,
    ),
    _bgp(
        "bgp-peer-idle",
        "the BGP session is idle",
        """The session to <peer-ip> is idle: disabled, waiting after an error before it
        retries, or both sides passive.""",
        _BGP_SHOW,
        _gw(
            "Enable the protocol if it is disabled.",
            "<bird-client> -s <bird-socket> enable <peer-name>",
        ),
        _BGP_PEER_STATUS,
    ),
    _bgp(
        "bgp-route-missing",
        "BGP is up but the gateway has no route to the pods",
        """Every session is Established, but no BGP-learned route covers the pods: the
        nodes do not export the pod blocks to the gateway, or the gateway's kernel protocol
        does not import them.""",
        _gw(
            "See which routes arrived and which reached the kernel.",
            "<bird-client> -s <bird-socket> show route\nip route show proto bird",
        ),
        _peer(
            "See what the node exports to the gateway, and the IP pools' blocks.",
            "birdc show route export <node-protocol>\ncalicoctl get ippool -o wide",
        ),
    ),
    _bgp(
        "bgp-not-running",
        "BIRD (or calico-node) is not running on the gateway",
        """No BGP daemon answers on the gateway: BIRD is stopped, or its control socket is
        not where --bird-socket says.""",
        _gw(
            "Check the daemon and its socket, and start it.",
            "systemctl status bird --no-pager\nls -l <bird-socket>\nsystemctl start bird",
        ),
    ),
)


def _kp(id: str, title: str, meaning: str, *steps: Step) -> Entry:
    return _e(id, "kube-proxy-binary", title, meaning, *steps)


_KUBE_PROXY_ENTRIES = (
    _kp(
        "kube-proxy-missing",
        "no kube-proxy binary on the gateway",
        """The file kube-proxy should run from (<kube-proxy-path>) does not exist, so the
        gateway has no kube-proxy to write the Service rules.""",
        _KP_COPY,
        _KP_VERSION,
    ),
    _kp(
        "kube-proxy-not-a-file",
        "kube-proxy's path is not a regular file",
        """<kube-proxy-path> is a directory or another kind of file, not a program.""",
        _gw("See what is there.", "ls -ld <kube-proxy-path>\nstat <kube-proxy-path>"),
        _KP_COPY,
    ),
    _kp(
        "kube-proxy-corrupt",
        "the gateway's kube-proxy binary is corrupt",
        """The binary is not the one it should be: not an ELF program, its sha256 differs
        from <expected-sha256>, or it dies with a signal and no Go trace (a damaged
        copy).""",
        _gw(
            "Compare the checksums.",
            "sha256sum <kube-proxy-path>    # the right one: <expected-sha256>",
        ),
        _KP_COPY,
        _KP_VERSION,
    ),
    _kp(
        "kube-proxy-wrong-arch",
        "kube-proxy is built for another architecture",
        """The binary is built for <binary-arch> but the gateway is <gateway-arch>: it
        cannot run there.""",
        _gw(
            "Download the <go-arch> build of the cluster's version and check it.",
            "curl -fLo /tmp/kube-proxy.new "
            "https://dl.k8s.io/release/<kubernetes-version>/bin/linux/<go-arch>/kube-proxy\n"
            "curl -fsL https://dl.k8s.io/release/<kubernetes-version>/bin/linux/<go-arch>/"
            "kube-proxy.sha256; echo; sha256sum /tmp/kube-proxy.new\n"
            "install -m 0755 /tmp/kube-proxy.new <kube-proxy-path>\n"
            "systemctl restart kube-proxy",
        ),
        _KP_VERSION,
    ),
    _kp(
        "kube-proxy-not-executable",
        "kube-proxy is not executable",
        """<kube-proxy-path> has no execute permission (or sits on a noexec mount).""",
        _gw(
            "Make it executable, check the mount, and restart kube-proxy.",
            "chmod 0755 <kube-proxy-path>\n"
            "findmnt -T <kube-proxy-path> -o TARGET,OPTIONS    # noexec there stops it too\n"
            "systemctl restart kube-proxy",
        ),
        _KP_VERSION,
    ),
    _kp(
        "kube-proxy-panic",
        "kube-proxy panics",
        """kube-proxy --version prints a Go panic: the binary is sound (a checksum or ELF
        check passed) but crashes; a bug or a bad environment, not a bad copy.""",
        _gw(
            "Read the panic and kube-proxy's log; check its flags and config.",
            "<kube-proxy-path> --version\njournalctl -u kube-proxy -n 100 --no-pager\n"
            "systemctl cat kube-proxy",
        ),
        _kubectl(
            "Compare with the cluster's version, and install a release without the bug.",
            "kubectl version",
        ),
    ),
    _kp(
        "kube-proxy-version-hung",
        "kube-proxy --version did not finish in time",
        """kube-proxy --version was still running when k8sreach's timeout cut it: a hung
        binary, or only a slow or loaded gateway. Its state is unknown.""",
        _gw(
            "Run it with more time and look at the gateway's load.",
            'timeout 20 <kube-proxy-path> --version; echo "exit $?"\nuptime',
        ),
    ),
)

_RULES_ENTRIES = (
    _e(
        "rules-no-endpoints",
        "kube-proxy-rules",
        "kube-proxy rejects the Service: it has no endpoints",
        """kube-proxy's rule for <service-ip>:<port> rejects (or drops) connections: that is
        what it installs for a Service without ready endpoints.""",
        _ENDPOINTS_SHOW,
        _PODS_WHY,
        _KP_RULES_VERIFY,
    ),
    _e(
        "rules-missing",
        "kube-proxy-rules",
        "no kube-proxy rule for the Service",
        """No rule in kube-proxy's tables (<proxy-mode>) matches <service-ip>:<port>: kube-proxy
        is not running or not syncing (it cannot reach the API server), or the address is
        not the Service's ClusterIP.""",
        _KP_SYNC,
        _SVC_SHOW,
        _KP_RULES_VERIFY,
    ),
    _e(
        "rules-unreadable",
        "kube-proxy-rules",
        "the gateway's NAT rules could not be read",
        """Neither iptables-save nor nft gave a ruleset k8sreach could read on the gateway,
        so the Service's rules were not judged.""",
        _gw(
            "Read them by hand, as root.",
            "iptables-save -t nat | head -n 40\nnft list ruleset | head -n 40",
        ),
    ),
)

_SERVICE_ENTRIES = (
    _e(
        "service-missing",
        "service-exists",
        "no such Service",
        """The API has no Service <service> in namespace <namespace>: a misspelt name, the
        wrong namespace, or a Service that was deleted.""",
        _kubectl(
            "List the namespace's Services, and look for the name in every namespace.",
            "kubectl get services -n <namespace>\n"
            "kubectl get services --all-namespaces --field-selector metadata.name=<service>",
        ),
        _kubectl(
            "The closest name in the namespace is <closest>: diagnose that one.",
            "k8sreach doctor <closest>.<namespace>",
            only_if="closest",
        ),
    ),
    _e(
        "service-port-unknown",
        "service-exists",
        "the Service has no such port",
        """The port asked for is not a port name of the Service. Probe one of its ports by
        name or number.""",
        _kubectl(
            "List the Service's ports.",
            "kubectl get service <service> -n <namespace> -o jsonpath='{.spec.ports}'",
        ),
    ),
    _e(
        "service-port-ambiguous",
        "service-exists",
        "the port to probe is not one of the Service's, or not chosen",
        """The port given is not one of the Service's ports (a targetPort or nodePort, which
        the ClusterIP does not listen on), or the Service has several ports and none was
        chosen.""",
        _kubectl(
            "List the Service's ports and give one with -p NAME or -p NUMBER.",
            "kubectl get service <service> -n <namespace> -o jsonpath='{.spec.ports}'",
        ),
    ),
    _e(
        "service-port-not-tcp",
        "service-exists",
        "the probed port is not TCP",
        """The Service port is UDP or SCTP; tcp-connect probes TCP only, so its result says
        nothing about this port.""",
        _kubectl(
            "List the Service's ports and protocols.",
            "kubectl get service <service> -n <namespace> -o jsonpath='{.spec.ports}'",
        ),
    ),
)

_ENDPOINTS_ENTRIES = (
    _e(
        "endpoints-no-matching-pods",
        "endpoints-ready",
        "no pod matches the Service's selector",
        """No pod in <namespace> carries the labels <selector>: the selector or the pods'
        labels are wrong, or the workload is scaled to zero.""",
        _kubectl(
            "Compare the selector with the pods' labels, and see the workloads' replicas.",
            "kubectl get pods -n <namespace> --show-labels\n"
            "kubectl get deployments,statefulsets -n <namespace>\n"
            "kubectl edit service <service> -n <namespace>    # if the selector is wrong",
        ),
    ),
    _e(
        "endpoints-pods-not-ready",
        "endpoints-ready",
        "the Service's pods are not Ready",
        """Pods match the selector, but none is Ready, so the Service has no ready endpoint
        and kube-proxy rejects its connections.""",
        _PODS_WHY,
        _ENDPOINTS_SHOW,
    ),
    _e(
        "endpoints-port-name-missing",
        "endpoints-ready",
        "the Service's targetPort is not a named port of the pods",
        """The Service's targetPort '<target-port>' is a port name, and the pods' containers
        declare no port by that name, so the endpoints controller publishes no endpoint.""",
        _kubectl(
            "See the pods' named ports; name the container port <target-port> in the pod "
            "template, or set the Service's targetPort to the number.",
            "kubectl get pod <pod> -n <namespace> -o jsonpath='{.spec.containers[*].ports}'\n"
            "kubectl edit service <service> -n <namespace>",
        ),
    ),
    _e(
        "endpoints-selectorless",
        "endpoints-ready",
        "a Service without selector has no usable hand-written endpoints",
        """The Service has no selector, so only Endpoints written by hand feed it: none
        exist, they list only not-ready addresses, or their port name differs from the
        Service port's.""",
        _kubectl(
            "Read the hand-written Endpoints and fix them.",
            "kubectl get endpoints <service> -n <namespace> -o yaml\n"
            "kubectl edit endpoints <service> -n <namespace>",
        ),
    ),
    _e(
        "endpoints-none-ready",
        "endpoints-ready",
        "the Service has no ready endpoints",
        """No endpoint of the Service is ready for the probed port, for a reason the other
        endpoints runbooks do not cover (the pods could not be read, or the endpoints
        controller has not caught up).""",
        _ENDPOINTS_SHOW,
        _kubectl(
            "Compare the EndpointSlices with the pods.",
            "kubectl describe endpoints <service> -n <namespace>",
        ),
    ),
)


def _tcp(id: str, title: str, meaning: str, *steps: Step) -> Entry:
    return _e(id, "tcp-connect", title, meaning, *steps)


_TCP_ENTRIES = (
    _tcp(
        "tcp-reset",
        "the target resets the connection",
        """The packets reach the pod (or what the ClusterIP is translated to) and it answers
        with a TCP reset: nothing listens on the target port there.""",
        _kubectl(
            "Check the Service's targetPort against the port the container listens on, and "
            "the pods' logs.",
            "kubectl get service <service> -n <namespace> -o jsonpath='{.spec.ports}'\n"
            "kubectl get pods -n <namespace> -l <selector> -o wide\n"
            "kubectl logs -n <namespace> -l <selector> --tail=50",
        ),
    ),
    _tcp(
        "tcp-rejected-no-endpoints",
        "the gateway rejects the connection: the Service has no endpoints",
        """The gateway <answered-by> answers ICMP port unreachable: kube-proxy's rule for a
        Service without ready endpoints.""",
        _ENDPOINTS_SHOW,
        _PODS_WHY,
        _KP_RULES_VERIFY,
    ),
    _tcp(
        "tcp-rejected",
        "a host on the way rejects the connection",
        """<answered-by> refuses the connection with an ICMP error: a firewall REJECT rule,
        or kube-proxy's rule for a Service without endpoints on that host.""",
        Step(
            "router",
            "Find the rule that rejects it.",
            "iptables -S | grep -e REJECT\nnft list ruleset | grep -n -e reject",
        ),
    ),
    _tcp(
        "tcp-refused",
        "the connection is refused",
        """Something on the path answered at once that nothing takes the connection:
        kube-proxy's REJECT for a Service without ready endpoints, or no process listening
        on the pod's target port. (On Linux, k8sreach tells these apart.)""",
        _ENDPOINTS_SHOW,
        _kubectl(
            "Check the targetPort and the pods' logs.",
            "kubectl get service <service> -n <namespace> -o jsonpath='{.spec.ports}'\n"
            "kubectl logs -n <namespace> -l <selector> --tail=50",
        ),
    ),
    _tcp(
        "tcp-timeout",
        "the connection times out",
        """No answer at all: packets to <service-ip>:<port> are dropped silently on the path,
        most often on the gateway (forwarding, kube-proxy's rules, the BGP routes to the
        pods). Run k8sreach with --ssh so it reads the gateway.""",
        _client(
            "See how far the packets get.",
            linux="sudo traceroute -T -p <port> -n <service-ip>",
            macos="traceroute -n -P tcp -p <port> <service-ip>",
            windows="Test-NetConnection <service-ip> -Port <port> -InformationLevel Detailed\n"
            "tracert -d <service-ip>",
        ),
        _GW_FORWARDING,
    ),
    _tcp(
        "tcp-unreachable-router",
        "a router says the Service is unreachable",
        """<answered-by> answered network or host unreachable for <service-ip>: it has no
        route onward to it.""",
        Step(
            "router",
            "See its route to the address (on the gateway: the routes learned over BGP).",
            "ip route get <service-ip>\nip route show proto bird",
        ),
    ),
    _tcp(
        "tcp-unreachable-client",
        "this client has no usable route to the Service",
        """The client itself reports network or host unreachable for <service-ip>: its
        routing table has no usable route there.""",
        _ROUTE_VERIFY,
        _ROUTE_ADD,
        _ROUTE_KEEP,
    ),
    _tcp(
        "tcp-blocked",
        "this client's firewall blocks the connection",
        """The client's own packet filter refuses outgoing connections to <service-ip>:<port>
        (EPERM or EACCES from connect).""",
        _client(
            "Find the rule that blocks it and allow outgoing TCP to the cluster ranges.",
            linux="sudo iptables -S OUTPUT\nsudo nft list ruleset | grep -n -e drop -e reject",
            macos="sudo pfctl -s rules    # and any application firewall that filters "
            "outgoing traffic",
            windows="Get-NetFirewallRule -Direction Outbound -Action Block -Enabled True |\n"
            "  Format-Table DisplayName, Profile\n"
            "# a Block rule wins over any Allow rule: change or disable it\n"
            "# (Disable-NetFirewallRule -DisplayName '...')",
        ),
    ),
)


def _np(id: str, title: str, meaning: str, *steps: Step) -> Entry:
    return _e(id, "nodeport-connect", title, meaning, *steps)


_NODE_PATH = _client(
    "Check this client's route and the firewalls on the way to the nodes' port <node-port>.",
    linux="ip route get <node-ip>\nnc -zv -w 3 <node-ip> <node-port>",
    macos="route -n get <node-ip>\nnc -zv -G 3 <node-ip> <node-port>",
    windows="Find-NetRoute -RemoteIPAddress <node-ip>\n"
    "Test-NetConnection <node-ip> -Port <node-port>",
)
_NODEPORT_ENTRIES = (
    _np(
        "nodeport-no-ready-nodes",
        "no Ready node to probe the nodePort on",
        """No node is Ready with an InternalIP, so the nodePort cannot be reached on any.""",
        _kubectl("See the nodes' state.", "kubectl get nodes -o wide\nkubectl describe nodes"),
    ),
    _np(
        "nodeport-refused",
        "the nodes refuse the nodePort",
        """The nodes answer at once that nothing takes port <node-port>: kube-proxy on the
        nodes has no rule for it, or the Service has no ready endpoints (with
        externalTrafficPolicy Local, none on that node).""",
        _kubectl(
            "Check kube-proxy on the nodes, the endpoints and where the pods run.",
            "kubectl -n kube-system get pods -l k8s-app=kube-proxy -o wide\n"
            "kubectl get endpointslices -n <namespace> -l kubernetes.io/service-name=<service>\n"
            "kubectl get pods -n <namespace> -l <selector> -o wide",
        ),
        Step(
            "node",
            "Look for kube-proxy's rule for the nodePort on a node.",
            "iptables-save -t nat | grep -e '<node-port>'\nipvsadm -Ln | grep -e '<node-port>'",
        ),
    ),
    _np(
        "nodeport-timeout",
        "the nodePort times out on every node",
        """Packets to port <node-port> on the nodes are dropped on the way: a firewall or
        security group between this client and the nodes (NodePorts are 30000-32767 by
        default), or no route to the node network.""",
        _NODE_PATH,
        Step(
            "node",
            "Look for a firewall rule dropping the port on a node.",
            "iptables -S INPUT | grep -e DROP -e '<node-port>'",
        ),
    ),
)


def _lb(id: str, title: str, meaning: str, *steps: Step) -> Entry:
    return _e(id, "loadbalancer-connect", title, meaning, *steps)


_LB_ENTRIES = (
    _lb(
        "lb-pending",
        "the load balancer has no address yet",
        """No load-balancer implementation gave the Service an address: the cloud
        controller manager has not (quota, permissions), or on bare metal MetalLB or
        kube-vip is missing or has no free address.""",
        _kubectl(
            "See the Service's events and the load-balancer controller.",
            "kubectl describe service <service> -n <namespace>\n"
            "kubectl get pods -A -l app.kubernetes.io/name=metallb",
        ),
    ),
    _lb(
        "lb-unresolved",
        "the load balancer's host name does not resolve",
        """The Service's load balancer is a host name (<lb-hostname>) this client cannot
        resolve; a new cloud load balancer's name can take minutes to appear.""",
        _client(
            "Resolve the name through this client's resolver.",
            linux="dig <lb-hostname> +short\ngetent hosts <lb-hostname>",
            macos="dig <lb-hostname> +short\ndscacheutil -q host -a name <lb-hostname>",
            windows="Resolve-DnsName <lb-hostname>",
        ),
    ),
    _lb(
        "lb-refused",
        "the load balancer refuses the port",
        """The load balancer answers that nothing takes port <port>: it has no healthy
        backend (its health checks fail on the nodes' nodePort, or the healthCheckNodePort
        with externalTrafficPolicy Local), or it has no listener for the port.""",
        _ENDPOINTS_SHOW,
        _kubectl(
            "See the Service's ports and health-check port.",
            "kubectl get service <service> -n <namespace> -o "
            "jsonpath='{.spec.ports} {.spec.healthCheckNodePort}'",
        ),
    ),
    _lb(
        "lb-timeout",
        "the load balancer does not answer",
        """Packets to the load balancer's port <port> are dropped: a firewall or security
        group in front of it, loadBalancerSourceRanges that leave this client out, or an
        address this client cannot route to.""",
        _kubectl(
            "See which client ranges the Service admits.",
            "kubectl get service <service> -n <namespace> -o "
            "jsonpath='{.spec.loadBalancerSourceRanges}'",
        ),
        _client(
            "Check the route and the port from this client.",
            linux="ip route get <lb-address>\nnc -zv -w 3 <lb-address> <port>",
            macos="route -n get <lb-address>\nnc -zv -G 3 <lb-address> <port>",
            windows="Find-NetRoute -RemoteIPAddress <lb-address>\n"
            "Test-NetConnection <lb-address> -Port <port>",
        ),
    ),
    _lb(
        "lb-partial",
        "some of the load balancer's addresses do not answer",
        """Some addresses answer and others do not; clients given the silent ones (DNS
        round robin) fail. The evidence shows each address's outcome.""",
        _kubectl("List the addresses.", "kubectl get service <service> -n <namespace> -o wide"),
    ),
)


def _ing(id: str, title: str, meaning: str, *steps: Step) -> Entry:
    return _e(id, "ingress-http", title, meaning, *steps)


_CONTROLLER = _kubectl(
    "See the ingress controller's Service, pods and log.",
    "kubectl get service -n ingress-nginx -o wide\n"
    "kubectl get pods -n ingress-nginx -o wide\n"
    "kubectl -n ingress-nginx logs deploy/ingress-nginx-controller --tail=50",
)
_CONTROLLER_PATH = _client(
    "Check the route and the port to the controller from this client.",
    linux="ip route get <controller-address>\n"
    "curl -sv -o /dev/null -H 'Host: <http-host>' "
    "http://<controller-address>:<controller-port>/",
    macos="route -n get <controller-address>\n"
    "curl -sv -o /dev/null -H 'Host: <http-host>' "
    "http://<controller-address>:<controller-port>/",
    windows="Find-NetRoute -RemoteIPAddress <controller-address>\n"
    "Test-NetConnection <controller-address> -Port <controller-port>",
)
_INGRESS_RULES = _kubectl(
    "List the rules: hosts, then the paths of the one that should match.",
    "kubectl get ingress -A -o wide\nkubectl describe ingress -n <namespace>",
)
_INGRESS_ENTRIES = (
    _ing(
        "ingress-missing",
        "no such Ingress",
        """The API has no Ingress of that name in namespace <namespace>.""",
        _kubectl("List the namespace's Ingresses.", "kubectl get ingress -n <namespace>"),
    ),
    _ing(
        "ingress-host-unresolved",
        "the URL's host name does not resolve",
        """<http-host> does not resolve, and the API gives no controller address to use
        instead: clients cannot find the controller.""",
        _client(
            "Resolve the name through this client's resolver.",
            linux="dig <http-host> +short\ngetent hosts <http-host>",
            macos="dig <http-host> +short\ndscacheutil -q host -a name <http-host>",
            windows="Resolve-DnsName <http-host>",
        ),
        _INGRESS_RULES,
    ),
    _ing(
        "ingress-controller-refused",
        "the ingress controller refuses the connection",
        """Nothing listens on <controller-address>:<controller-port>: the controller does not
        run there, or its Service does not expose the port.""",
        _CONTROLLER,
    ),
    _ing(
        "ingress-controller-timeout",
        "the ingress controller does not answer",
        """Packets to <controller-address>:<controller-port> are dropped: a firewall or
        security group on the way, or the address is not the controller's.""",
        _CONTROLLER_PATH,
        _INGRESS_RULES,
    ),
    _ing(
        "ingress-controller-unreachable",
        "the ingress controller cannot be reached",
        """This client has no usable route to <controller-address>.""",
        _CONTROLLER_PATH,
    ),
    _ing(
        "ingress-no-response",
        "the controller took the request and did not answer",
        """The controller (or whatever listens there) accepted the connection and sent no
        response in time: it is overloaded, or the backend is slower than the timeout.""",
        _CONTROLLER,
    ),
    _ing(
        "ingress-tls-error",
        "TLS with the controller failed",
        """The controller's certificate for <http-host> is not valid for this client: the
        Ingress's TLS secret is wrong or missing, or its CA is not trusted here.""",
        _client(
            "See the certificate the controller presents for the name.",
            linux="openssl s_client -connect <controller-address>:<controller-port> "
            "-servername <http-host> </dev/null | openssl x509 -noout -subject -issuer -dates",
            macos="openssl s_client -connect <controller-address>:<controller-port> "
            "-servername <http-host> </dev/null | openssl x509 -noout -subject -issuer -dates",
            windows="curl.exe -sv -o NUL --resolve <http-host>:<controller-port>:"
            "<controller-address> https://<http-host>/",
        ),
        _kubectl("Check the Ingress's TLS section.", "kubectl describe ingress -n <namespace>"),
    ),
    _ing(
        "ingress-no-rule",
        "no Ingress rule matches the request",
        """No rule serves <http-host> with this path: the host is misspelt, the path type
        does not match (Prefix matches whole segments, Exact only the path itself), or the
        name points at another cluster's controller.""",
        _INGRESS_RULES,
    ),
    _ing(
        "ingress-not-loaded",
        "the controller has not loaded the matching Ingress",
        """An Ingress rule matches, but the controller answers its default backend: the
        Ingress's class is not this controller's, or the controller rejected it.""",
        _kubectl(
            "Compare the Ingress's class with the controller's, and read the controller's log.",
            "kubectl get ingressclass\nkubectl get ingress -A -o wide\n"
            "kubectl -n ingress-nginx logs deploy/ingress-nginx-controller --tail=100",
        ),
    ),
    _ing(
        "ingress-backend-404",
        "the application answers 404",
        """The request reached the application, which has nothing at that path: the path is
        wrong, or a rewrite annotation changes the path the application sees.""",
        _kubectl("Read the Ingress's annotations.", "kubectl describe ingress -n <namespace>"),
    ),
    _ing(
        "ingress-no-endpoints",
        "the Ingress's backend Service has no endpoints",
        """The controller has nowhere to send the request (it answers 503): the backend
        Service <backend-namespace>/<backend-name> has no ready endpoints.""",
        _kubectl(
            "Diagnose the backend Service.",
            "k8sreach doctor <backend-name>.<backend-namespace>\n"
            "kubectl get endpoints <backend-name> -n <backend-namespace>",
        ),
    ),
    _ing(
        "ingress-backend-error",
        "the backend fails the request",
        """The controller reached the backend and got an error (502: the pods refuse or
        reset, 504: they answer too late, other 5xx: the application failed it).""",
        _kubectl(
            "Check the backend's targetPort and logs, and the controller's log.",
            "kubectl describe service <backend-name> -n <backend-namespace>\n"
            "kubectl -n ingress-nginx logs deploy/ingress-nginx-controller --tail=100",
        ),
    ),
    _ing(
        "ingress-http-status",
        "the request is refused with a client error",
        """The request got a 4xx status other than 401, 403 or 404: the backend, or one of
        the controller's rules (an allow-list annotation), refuses it.""",
        _kubectl("Read the Ingress's annotations.", "kubectl describe ingress -n <namespace>"),
    ),
    _ing(
        "ingress-dns-mismatch",
        "the URL's host name does not point at the controller",
        """The request works through the Ingress's address, but <http-host> does not resolve
        to it: clients that use the name go elsewhere, or nowhere.""",
        _client(
            "Compare the name's address with the Ingress's; publish or correct the record.",
            linux="dig <http-host> +short    # must print <controller-address>",
            macos="dig <http-host> +short    # must print <controller-address>",
            windows="Resolve-DnsName <http-host>    # must give <controller-address>",
        ),
    ),
)

# The entry used for a failure of a known check that no specific entry describes.
_GENERIC_CHECKS = (
    "route-present",
    "dns-resolves",
    "dns-search",
    "kube-dns-direct",
    "gateway-forwarding",
    "bgp-peer-established",
    "kube-proxy-binary",
    "kube-proxy-rules",
    "service-exists",
    "tcp-connect",
    "nodeport-connect",
    "loadbalancer-connect",
    "ingress-http",
)
_GENERIC = tuple(
    _e(
        f"{check}-other",
        check,
        f"another {check} failure",
        """The check failed in a way no specific runbook covers: its summary, evidence and
        advice below say what it saw.""",
        _DOCTOR_VERBOSE,
    )
    for check in _GENERIC_CHECKS
)

_ALL: tuple[Entry, ...] = (
    *_ROUTE_ENTRIES,
    *_DNS_ENTRIES,
    *_DNS_EXTRA_ENTRIES,
    *_SEARCH_ENTRIES,
    *_KUBE_DNS_ENTRIES,
    *_FORWARDING_ENTRIES,
    *_BGP_ENTRIES,
    *_KUBE_PROXY_ENTRIES,
    *_RULES_ENTRIES,
    *_SERVICE_ENTRIES,
    *_ENDPOINTS_ENTRIES,
    *_TCP_ENTRIES,
    *_NODEPORT_ENTRIES,
    *_LB_ENTRIES,
    *_INGRESS_ENTRIES,
)
_ORDER = {c: i for i, c in enumerate((*dict.fromkeys(e.check for e in _ALL),))}
_ENTRIES = tuple(sorted((*_ALL, *_GENERIC), key=lambda e: _ORDER.get(e.check, len(_ORDER))))
_BY_ID = {e.id: e for e in _ENTRIES}
FALLBACK = {"endpoints-ready": "endpoints-none-ready"} | {c: f"{c}-other" for c in _GENERIC_CHECKS}


def entries() -> tuple[Entry, ...]:
    """Every runbook entry, in path order of their checks."""
    return _ENTRIES


def get(entry_id: str) -> Entry | None:
    """The entry with this id, or None."""
    return _BY_ID.get(entry_id)


def kinds_for(check_id: str) -> tuple[str, ...]:
    """The ids of the entries for one check's failures (empty for a check without any)."""
    return tuple(e.id for e in _ENTRIES if e.check == check_id)


# --- which entry a result is --------------------------------------------------------------------


def kind_of(result: CheckResult) -> str | None:
    """The entry id for a failed or warned result: its main failure kind, else the check's
    generic entry; None for a pass, skip or error, or a check without runbooks."""
    kinds = kinds_of(result)
    return kinds[0] if kinds else None


def kinds_of(result: CheckResult) -> tuple[str, ...]:
    """Every entry id that applies to a failed or warned result, the main one first."""
    if result.status not in (Status.FAIL, Status.WARN):
        return ()
    judge = _KIND_JUDGES.get(result.id)
    if judge is None:
        return ()
    try:
        found = [k for k in judge(result.evidence or {}, result) if k in _BY_ID]
    except (AttributeError, KeyError, TypeError, ValueError):
        # Evidence of an unexpected shape (another version of the check): the generic entry.
        LOG.debug("evidence of %s not understood for its runbook", result.id, exc_info=True)
        found = []
    if not found and result.id in FALLBACK:
        found = [FALLBACK[result.id]]
    return tuple(dict.fromkeys(found))


def _route_kinds(ev: Mapping[str, Any], result: CheckResult) -> list[str]:
    failure = ev.get("failure")
    if failure in ("missing", "default-only", "other-next-hop"):
        return [f"route-{failure}"]
    if not ev and "routing table" in result.summary:
        return ["route-table-unreadable"]
    return []


def _dns_kinds(ev: Mapping[str, Any], result: CheckResult) -> list[str]:
    if "server" not in ev:
        return ["dns-no-server"] if "no DNS server" in result.summary else []
    udp, tcp = ev.get("udp") or {}, ev.get("tcp") or {}
    if result.status is Status.WARN:
        return _dns_warn_kinds(ev, udp, tcp)
    if udp.get("outcome") not in (None, "answer") and tcp.get("outcome") == "answer":
        return ["dns-udp-fails"]
    rcode = ev.get("rcode")
    if rcode is None:
        error = ev.get("error")
        if error == "ECONNREFUSED":
            return ["dns-not-listening"]
        if error in ("ENETUNREACH", "EHOSTUNREACH"):
            return ["dns-server-unreachable"]
        return ["dns-timeout"] if error is None else []
    if rcode == "NXDOMAIN":
        api = ev.get("api_kind")
        has_records = api not in (None, "missing") and (
            api != "headless" or bool(ev.get("api_addresses"))
        )
        return ["dns-proxy-not-forwarding" if has_records else "dns-nxdomain"]
    if rcode in ("SERVFAIL", "REFUSED"):
        return [f"dns-{rcode.lower()}"]
    if rcode != "NOERROR":
        return []
    if ev.get("api_kind") == "external-name":
        return ["dns-external-name"]
    ranges = ev.get("ranges") or {}
    if "unexpected" in ev:
        foreign = any(ranges.get(a, "x") is None for a in ev["unexpected"])
        return ["dns-outside-cidr" if foreign else "dns-stale"]
    if not ev.get("answers"):
        return ["dns-nodata"]
    if any(v is None for v in ranges.values()):
        return ["dns-outside-cidr"]
    return []


def _dns_warn_kinds(
    ev: Mapping[str, Any], udp: Mapping[str, Any], tcp: Mapping[str, Any]
) -> list[str]:
    """A DNS answer that works with a caveat: TCP fails, no SRV, or the ranges given."""
    kinds = []
    if udp.get("outcome") == "answer" and tcp.get("outcome") not in (None, "answer"):
        kinds.append("dns-tcp-fails")
    if "srv" in ev and (ev["srv"] or {}).get("port") is None:
        kinds.append("dns-srv-missing")
    api = set(ev.get("api_addresses") or [])
    if api and api == set(ev.get("answers") or []) and "api_kind" in ev:
        if not kinds or any(v is None for v in (ev.get("ranges") or {}).values()):
            kinds.append("dns-cidr-setting-wrong")
    return kinds


def _search_kinds(ev: Mapping[str, Any], result: CheckResult) -> list[str]:
    if result.status is not Status.WARN or "candidates" not in ev:
        return []
    return ["dns-search-wrong-answer" if ev.get("answered_by") else "dns-search-not-found"]


_KUBE_DNS_VERDICTS = {
    "proxy-differs": "kube-dns-proxy-differs",
    "not-kube-dns": "kube-dns-wrong-address",
    "kube-dns-or-path": "kube-dns-down",
    "both-down": "kube-dns-and-proxy-down",
    "path-to-cluster": "kube-dns-path-broken",
    "not-compared": "kube-dns-no-answer",
}


def _kube_dns_kinds(ev: Mapping[str, Any], result: CheckResult) -> list[str]:
    kind = _KUBE_DNS_VERDICTS.get(str(ev.get("verdict")))
    return [kind] if kind else []


def _forwarding_kinds(ev: Mapping[str, Any], result: CheckResult) -> list[str]:
    fails: list[str] = []
    warns: list[str] = []
    if ev.get("ip_forward_live") == "0":
        fails.append("forwarding-off")
    if ev.get("forward_policy") == "DROP":
        reasons = {a.get("reason") for a in ev.get("forward_accepts") or []}
        if not reasons & {"unconditional", "cidr"}:
            # only conditional accepts: the check warns (a rule may still let it through)
            (warns if "conditional" in reasons else fails).append("forwarding-drop-policy")
    if ev.get("nft_forward_drops"):
        fails.append("forwarding-nft-drop")
    if ev.get("ip_forward_live") == "1" and ev.get("ip_forward_persisted") != "1":
        warns.append("forwarding-not-persisted")
    rp = ev.get("rp_filter") or {}
    if any((v or {}).get("effective") == 1 for v in rp.values()):
        warns.append("rp-filter-strict")
    return fails + warns


# Text BIRD shows for a session that is not up, in the order the check reads it.
_BGP_CAUSES = (
    ("connection refused", "bgp-peer-refused"),
    ("no route to host", "bgp-peer-unreachable"),
    ("host is unreachable", "bgp-peer-unreachable"),
    ("network is unreachable", "bgp-peer-unreachable"),
    ("connection timed out", "bgp-peer-no-answer"),
    ("bad peer as", "bgp-bad-peer-as"),
    ("bad bgp identifier", "bgp-duplicate-router-id"),
    ("administrative shutdown", "bgp-admin-shutdown"),
    ("hold timer expired", "bgp-hold-timer-expired"),
)


def _bgp_kinds(ev: Mapping[str, Any], result: CheckResult) -> list[str]:
    if "peers" not in ev:
        text = result.summary.lower()
        return ["bgp-not-running"] if "not running" in text or "no bird" in text else []
    peers = ev["peers"]
    if not peers:
        return ["bgp-no-peers"]
    down = [p for p in peers if p.get("info") != "Established"]
    if not down:
        return ["bgp-route-missing"]
    kinds = []
    for peer in down:
        text = f"{peer.get('info', '')} {peer.get('message', '')}".lower()
        kind = next((k for needle, k in _BGP_CAUSES if needle in text), None)
        if kind is None:
            info = peer.get("info")
            kind = {
                "Passive": "bgp-peer-passive",
                "Idle": "bgp-peer-idle",
                "Connect": "bgp-peer-no-answer",
                "Active": "bgp-peer-no-answer",
                "OpenSent": "bgp-negotiation-failed",
                "OpenConfirm": "bgp-negotiation-failed",
            }.get(info)
        if kind:
            kinds.append(kind)
    return kinds


def _kube_proxy_kinds(ev: Mapping[str, Any], result: CheckResult) -> list[str]:
    from k8sreach.parsers.elf import uname_to_elf_machine

    if "file_type" not in ev:
        return []
    if ev["file_type"] is None:
        return ["kube-proxy-missing"]
    if ev["file_type"] != "regular file":
        return ["kube-proxy-not-a-file"]
    elf = ev.get("elf")
    if elf is None:
        return ["kube-proxy-corrupt"]
    machine = ev.get("gateway_machine")
    if machine and elf.get("machine") != uname_to_elf_machine(machine):
        return ["kube-proxy-wrong-arch"]
    sha, expected = ev.get("sha256"), ev.get("expected_sha256")
    if sha and expected and sha != expected:
        return ["kube-proxy-corrupt"]
    mode = ev.get("mode")
    if mode is not None and not int(mode, 8) & 0o111:
        return ["kube-proxy-not-executable"]
    run = ev.get("version_run") or {}
    kind = run.get("kind")
    if kind == "segfault":
        return ["kube-proxy-corrupt"]
    if kind == "go-panic":
        return ["kube-proxy-panic"]
    if kind == "killed" and run.get("signal") is None:
        return ["kube-proxy-version-hung"]
    return []


def _rules_kinds(ev: Mapping[str, Any], result: CheckResult) -> list[str]:
    if ev.get("mode") == "IPVS":
        return [] if ev.get("endpoints") else ["rules-no-endpoints"]
    kind = ev.get("kind")
    if kind in ("reject", "drop"):
        return ["rules-no-endpoints"]
    if kind == "none":
        return ["rules-missing"]
    return ["rules-unreadable"] if not ev else []


def _service_kinds(ev: Mapping[str, Any], result: CheckResult) -> list[str]:
    if ev.get("found") is False:
        return ["service-missing"]
    if result.status is Status.FAIL:
        return ["service-port-unknown"] if ev.get("port_problem") else []
    if ev.get("port_problem"):
        return ["service-port-ambiguous"]
    return ["service-port-not-tcp"] if ev.get("notes") else []


def _endpoints_kinds(ev: Mapping[str, Any], result: CheckResult) -> list[str]:
    if ev.get("port_name_missing_on"):
        return ["endpoints-port-name-missing"]
    if "pods" in ev:
        pods = ev["pods"]
        if not pods:
            return ["endpoints-no-matching-pods"]
        if not any(p.get("ready") for p in pods):
            return ["endpoints-pods-not-ready"]
        return ["endpoints-none-ready"]
    if "pods_error" in ev:
        return ["endpoints-none-ready"]
    # why_none_ready reads no pods only for a Service without selector
    return ["endpoints-selectorless"] if "why" in ev else []


def _tcp_kinds(ev: Mapping[str, Any], result: CheckResult) -> list[str]:
    outcome = ev.get("outcome")
    if outcome in ("reset", "refused", "timeout", "blocked"):
        return [f"tcp-{outcome}"]
    if outcome == "rejected":
        icmp = ev.get("icmp") or {}
        by_gateway = ev.get("answered_by_hop") == "gateway"
        if by_gateway and icmp.get("meaning") == "port unreachable":
            return ["tcp-rejected-no-endpoints"]
        return ["tcp-rejected"]
    if outcome == "unreachable":
        return ["tcp-unreachable-router" if ev.get("answered_by") else "tcp-unreachable-client"]
    return []


def _outcomes(docs: list[Mapping[str, Any]]) -> set[str]:
    """How a set of probes ended, with the three ways of being refused as one."""
    found = {str(d.get("outcome")) for d in docs if d.get("outcome")}
    return {"refused" if k in ("reset", "rejected", "refused") else k for k in found}


def _nodeport_kinds(ev: Mapping[str, Any], result: CheckResult) -> list[str]:
    if "nodes" not in ev:
        return []
    if not ev["nodes"]:
        return ["nodeport-no-ready-nodes"]
    kinds = _outcomes(ev["nodes"])
    return {
        frozenset({"refused"}): ["nodeport-refused"],
        frozenset({"timeout"}): ["nodeport-timeout"],
    }.get(frozenset(kinds), [])


def _lb_kinds(ev: Mapping[str, Any], result: CheckResult) -> list[str]:
    if "entries" not in ev:
        return []
    entries = ev["entries"]
    if not entries:
        return ["lb-pending"]
    if result.status is Status.WARN:
        return ["lb-partial"]
    probed = [e for e in entries if "outcome" in e]
    if not probed:
        return ["lb-unresolved"]
    kinds = _outcomes(probed)
    if kinds == {"refused"}:
        return ["lb-refused"]
    return ["lb-timeout"] if kinds == {"timeout"} else []


_HTTP_FAILURES = {
    "refused": "ingress-controller-refused",
    "timeout": "ingress-controller-timeout",
    "unreachable": "ingress-controller-unreachable",
    "no-response": "ingress-no-response",
    "tls-error": "ingress-tls-error",
}


def _ingress_kinds(ev: Mapping[str, Any], result: CheckResult) -> list[str]:
    if ev.get("found") is False:
        return ["ingress-missing"]
    extra = ["ingress-dns-mismatch"] if ev.get("dns_problem") else []
    response = ev.get("response")
    if response is None:
        return ["ingress-host-unresolved"] if "resolution" in ev else []
    outcome = response.get("outcome")
    if outcome != "response":
        return [k for k in [_HTTP_FAILURES.get(str(outcome))] if k] + extra
    status = int(response.get("status") or 0)
    if 200 <= status < 400 or status in (401, 403):
        return extra
    backend = (ev.get("api") or {}).get("backend") or {}
    if status == 404:
        if "rule_hosts" in ev:
            kind = "ingress-no-rule"
        else:
            kind = "ingress-not-loaded" if result.status is Status.FAIL else "ingress-backend-404"
        return [kind, *extra]
    if status >= 500:
        known = (
            bool(backend)
            and backend.get("found") is not False
            and not (backend.get("problem") or backend.get("external_name"))
        )
        page = bool(response.get("from_controller"))
        empty = (known and not backend.get("ready")) or (not known and page)
        kind = "ingress-no-endpoints" if status == 503 and empty else "ingress-backend-error"
        return [kind, *extra]
    return ["ingress-http-status", *extra]


_KIND_JUDGES = {
    "route-present": _route_kinds,
    "dns-resolves": _dns_kinds,
    "dns-search": _search_kinds,
    "kube-dns-direct": _kube_dns_kinds,
    "gateway-forwarding": _forwarding_kinds,
    "bgp-peer-established": _bgp_kinds,
    "kube-proxy-binary": _kube_proxy_kinds,
    "kube-proxy-rules": _rules_kinds,
    "service-exists": _service_kinds,
    "endpoints-ready": _endpoints_kinds,
    "tcp-connect": _tcp_kinds,
    "nodeport-connect": _nodeport_kinds,
    "loadbalancer-connect": _lb_kinds,
    "ingress-http": _ingress_kinds,
}


# --- the values a report gives ------------------------------------------------------------------

Values = dict[str, Any]  # placeholder name -> str, or a list of str (one command line each)


def context(report: Report) -> Values:
    """The placeholder values a report knows: addresses, names, paths, from its evidence."""
    values: Values = {}
    target = report.target or {}
    for key in ("service", "namespace", "fqdn"):
        if target.get(key):
            values[key] = str(target[key])
    fqdn = str(target.get("fqdn") or "")
    if ".svc." in fqdn:
        values["cluster-domain"] = fqdn.split(".svc.", 1)[1].rstrip(".")
    if target.get("port") is not None:
        values["port"] = str(target["port"])
    if target.get("service") and target.get("namespace"):
        values["short-name"] = f"{target['service']}.{target['namespace']}"
    by_id = {r.id: r for r in report.results}
    for check_id, reader in _READERS:
        result = by_id.get(check_id)
        if result is not None and isinstance(result.evidence, Mapping):
            try:
                reader(values, result.evidence, result)
            except (AttributeError, KeyError, TypeError, ValueError):
                LOG.debug("evidence of %s not understood for runbook values", check_id)
    if target.get("url"):
        values["target-arg"] = str(target["url"])
    elif target.get("ingress"):
        values["target-arg"] = f"--ingress {target['ingress']} -n {values.get('namespace')}"
    elif "service" in values and "namespace" in values:
        port = f":{values['port']}" if "port" in values else ""
        values["target-arg"] = f"{values['service']}.{values['namespace']}{port}"
    return values


def _put(values: Values, key: str, value: Any) -> None:
    """Set a value once: the first check on the path that knows it wins."""
    if value not in (None, "", []) and key not in values:
        values[key] = value if isinstance(value, list) else str(value)


def _route_values(values: Values, ev: Mapping[str, Any], result: CheckResult) -> None:
    expected = ev.get("expected_next_hop")
    _put(values, "gateway-ip", expected)
    checked = list(ev.get("checked") or [])
    sources = [(c.get("matched") or {}).get("source") for c in checked]
    _put(
        values,
        "client-os",
        next((_ROUTE_SOURCE_OS[s] for s in sources if s in _ROUTE_SOURCE_OS), None),
    )
    labels = [str(c.get("destination")) for c in checked]
    _put(values, "service-cidr", next((x for x in labels if "/" in x), None))
    _put(values, "service-ip", next((x for x in labels if "/" not in x), None))
    problems = [c for c in checked if _route_problem(c.get("matched"), expected)]
    nets = [str(c["destination"]) for c in problems if "/" in str(c["destination"])]
    if not nets:
        nets = [_host_net(str(c["destination"])) for c in problems]
    _put(values, "route-cidr", [n for n in nets if n])
    good = [
        m for c in checked if (m := c.get("matched")) and expected and m.get("next_hop") == expected
    ]
    defaults = [m for c in checked if (m := c.get("matched")) and _is_default(m)]
    iface_route = (good or defaults or [None])[0]
    if iface_route is not None:
        _put(values, "client-dev", iface_route.get("interface"))
    if problems and problems[0].get("matched"):
        matched = problems[0]["matched"]
        values["_matched"] = matched
        if ev.get("failure") == "other-next-hop":
            _put(values, "wrong-route", matched.get("destination"))


def _route_problem(matched: Mapping[str, Any] | None, expected: str | None) -> bool:
    """The same judgement as route-present's: no route, the default route only (unless it
    goes to the gateway), or another next hop."""
    if matched is None:
        return True
    if _is_default(matched):
        return not (expected is not None and matched.get("next_hop") == expected)
    return expected is not None and matched.get("next_hop") != expected


def _is_default(route: Mapping[str, Any]) -> bool:
    return str(route.get("destination")) in ("0.0.0.0/0", "::/0")


def _host_net(address: str) -> str:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return ""
    return f"{ip}/{ip.max_prefixlen}"


def _dns_values(values: Values, ev: Mapping[str, Any], result: CheckResult) -> None:
    server = str(ev.get("server") or "")
    host, _, port = server.rpartition(":")
    if host:
        _put(values, "dns-ip", host.strip("[]"))
        _put(values, "dns-port", port)
        if ev.get("server_from") in ("--dns", None):
            _put(values, "dns-proxy-ip", host.strip("[]"))
    answers = list(ev.get("unexpected") or ev.get("answers") or [])
    _put(values, "dns-answer", ", ".join(answers))
    api = list(ev.get("api_addresses") or [])
    _put(values, "service-ip", api[0] if api else None)
    if not api and result.status is Status.PASS and answers:
        _put(values, "service-ip", answers[0])


def _search_values(values: Values, ev: Mapping[str, Any], result: CheckResult) -> None:
    _put(values, "short-name", ev.get("short_name"))
    if "search" in ev and "cluster-domain" in values:
        wanted = f"svc.{values['cluster-domain']}"
        domains = [wanted, *(d for d in ev["search"] if d != wanted)]
        _put(values, "search-list", " ".join(domains))
        _put(values, "search-list-commas", ",".join(domains))
        _put(values, "search-list-ps", ", ".join(f'"{d}"' for d in domains))


def _kube_dns_values(values: Values, ev: Mapping[str, Any], result: CheckResult) -> None:
    host = str(ev.get("server") or "").rpartition(":")[0].strip("[]")
    _put(values, "kube-dns-ip", host)


def _forwarding_values(values: Values, ev: Mapping[str, Any], result: CheckResult) -> None:
    _put(values, "gateway-host", result.address)
    cidrs = [c for c in ev.get("cidrs") or [] if c != "0.0.0.0/0"]
    _put(values, "cluster-cidr", cidrs)
    if ev.get("ip_forward_persisted") not in (None, "1") and ev.get("persisted_in"):
        path, _, line = str(ev["persisted_in"]).rpartition(":")
        _put(values, "sysctl-file", path)
        _put(values, "sysctl-line", line)
    rp = ev.get("rp_filter") or {}
    _put(values, "rp-iface", sorted(i for i, v in rp.items() if (v or {}).get("effective") == 1))
    drops = list(ev.get("nft_forward_drops") or [])
    _put(values, "nft-chain", drops[0] if drops else None)


def _bgp_values(values: Values, ev: Mapping[str, Any], result: CheckResult) -> None:
    _put(values, "gateway-host", result.address)
    peers = list(ev.get("peers") or [])
    down = [p for p in peers if p.get("info") != "Established"] or peers
    calico = str(ev.get("source") or "").startswith("CalicoNodeStatus")
    if down:
        peer = down[0]
        _put(values, "peer-info", f"{peer.get('info', '')} {peer.get('message', '')}".strip())
        if calico:
            # seen from the node: `name` is the node, `address` the gateway it peers with
            _put(values, "bgp-node", peer.get("node") or peer.get("name"))
        else:
            _put(values, "peer-ip", peer.get("address"))
            _put(values, "bgp-node", peer.get("address"))
            _put(values, "peer-name", peer.get("name"))
    words = str(ev.get("source") or "").split()
    if len(words) >= 3 and words[1] == "-s":
        _put(values, "bird-client", words[0])
        _put(values, "bird-socket", words[2])


def _kube_proxy_values(values: Values, ev: Mapping[str, Any], result: CheckResult) -> None:
    _put(values, "gateway-host", result.address)
    _put(values, "kube-proxy-path", ev.get("path"))
    _put(values, "expected-sha256", ev.get("expected_sha256"))
    source = str(ev.get("expected_from") or "")
    if source.startswith("the reference "):
        _put(values, "reference-node", source.removeprefix("the reference ").split(":/")[0])
    machine = ev.get("gateway_machine")
    _put(values, "gateway-arch", machine)
    _put(values, "go-arch", _GO_ARCH.get(str(machine)))
    _put(values, "binary-arch", (ev.get("elf") or {}).get("machine"))
    _put(values, "kubernetes-version", (ev.get("version_run") or {}).get("version"))


_GO_ARCH = {
    "x86_64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "arm",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
}


def _rules_values(values: Values, ev: Mapping[str, Any], result: CheckResult) -> None:
    _put(values, "gateway-host", result.address)
    _put(values, "service-ip", ev.get("cluster_ip"))
    _put(values, "proxy-mode", ev.get("mode"))


def _service_values(values: Values, ev: Mapping[str, Any], result: CheckResult) -> None:
    selector = ev.get("selector") or {}
    _put(values, "selector", ",".join(f"{k}={v}" for k, v in sorted(selector.items())))
    if ev.get("cluster_ip") not in (None, "None"):
        values["service-ip"] = str(ev["cluster_ip"])  # the API's word beats DNS's
    _put(values, "target-port", (ev.get("probed_port") or {}).get("target_port"))
    closest = list(ev.get("closest") or [])
    _put(values, "closest", closest[0] if closest else None)


def _endpoints_values(values: Values, ev: Mapping[str, Any], result: CheckResult) -> None:
    pods = list(ev.get("pods") or [])
    lacking = list(ev.get("port_name_missing_on") or [])
    not_ready = [p.get("name") for p in pods if not p.get("ready")]
    _put(values, "pod", (lacking or not_ready or [p.get("name") for p in pods] or [None])[0])


def _tcp_values(values: Values, ev: Mapping[str, Any], result: CheckResult) -> None:
    _put(values, "service-ip", ev.get("address"))
    _put(values, "port", ev.get("port"))
    _put(values, "answered-by", ev.get("answered_by"))


def _nodeport_values(values: Values, ev: Mapping[str, Any], result: CheckResult) -> None:
    _put(values, "node-port", ev.get("node_port"))
    nodes = [n for n in ev.get("nodes") or [] if n.get("internal_ip")]
    _put(values, "node-ip", nodes[0]["internal_ip"] if nodes else None)


def _lb_values(values: Values, ev: Mapping[str, Any], result: CheckResult) -> None:
    for entry in ev.get("entries") or []:
        resolved = list((entry.get("resolution") or {}).get("addresses") or [])
        _put(values, "lb-address", entry.get("ip") or (resolved[0] if resolved else None))
        _put(values, "lb-hostname", entry.get("hostname"))


def _ingress_values(values: Values, ev: Mapping[str, Any], result: CheckResult) -> None:
    request = ev.get("request") or {}
    _put(values, "http-url", request.get("url"))
    _put(values, "controller-address", request.get("address"))
    _put(values, "controller-port", request.get("port"))
    host = (ev.get("resolution") or {}).get("host")
    _put(values, "http-host", host or str(request.get("host_header") or "").rsplit(":", 1)[0])
    backend = ((ev.get("api") or {}).get("backend") or {}).get("service")
    if backend and "/" in str(backend):
        namespace, _, name = str(backend).partition("/")
        _put(values, "backend-namespace", namespace)
        _put(values, "backend-name", name)
    rule = (ev.get("api") or {}).get("rule") or {}
    _put(values, "namespace", rule.get("namespace"))


# Path order, so a value comes from the earliest check that knows it (service-exists may
# still override the ClusterIP: the API is the authority on it).
_READERS = (
    ("route-present", _route_values),
    ("service-exists", _service_values),
    ("dns-resolves", _dns_values),
    ("dns-search", _search_values),
    ("kube-dns-direct", _kube_dns_values),
    ("gateway-forwarding", _forwarding_values),
    ("bgp-peer-established", _bgp_values),
    ("kube-proxy-binary", _kube_proxy_values),
    ("kube-proxy-rules", _rules_values),
    ("endpoints-ready", _endpoints_values),
    ("tcp-connect", _tcp_values),
    ("nodeport-connect", _nodeport_values),
    ("loadbalancer-connect", _lb_values),
    ("ingress-http", _ingress_values),
)


# --- rendering ----------------------------------------------------------------------------------


def client_os(platform: str = sys.platform) -> str:
    """This machine's OS as the runbooks name it: linux, macos or windows."""
    if platform == "darwin":
        return "macos"
    if platform.startswith("win") or platform == "cygwin":
        return "windows"
    return "linux"


def _derive(values: Values, os_name: str) -> Values:
    """Add the values computed from others (netmasks, per-OS forms), markers where unknown."""
    out = dict(values)

    def v(key: str) -> str:
        value = out.get(key)
        return value if isinstance(value, str) else f"<{key}>"

    if "gateway-ip" not in out and _is_ip(out.get("gateway-host")):
        out["gateway-ip"] = out["gateway-host"]
    if "gateway-host" not in out and "gateway-ip" in out:
        out["gateway-host"] = out["gateway-ip"]
    if "route-cidr" not in out and "service-cidr" in out:
        out["route-cidr"] = [out["service-cidr"]]
    nets = [n for n in (_net(x) for x in out.get("route-cidr") or []) if n is not None]
    gateway = v("gateway-ip")
    same_os = out.get("client-os", os_name) == os_name
    dev = out.get("client-dev") if same_os else None
    if nets:
        out["route-cidr"] = [str(n) for n in nets]
        out["route-address"] = [str(n.network_address) for n in nets]
        out["route-netmask"] = [str(n.netmask) for n in nets]
        out["route-netstat"] = [_netstat_form(n) for n in nets]
        out["route-yaml"] = [f"{{to: {n}, via: {gateway}}}" for n in nets]
        out["mac-routes"] = " ".join(f"{n.network_address} {n.netmask} {gateway}" for n in nets)
        tail = f"  {dev}" if dev else ""
        out["win-active-row"] = [f"{n.network_address}  {n.netmask}  {gateway}{tail}" for n in nets]
        out["win-persistent-row"] = [
            f"{n.network_address}  {n.netmask}  {gateway}  Default" for n in nets
        ]
        if "probe-ip" not in out:
            out["probe-ip"] = out.get("service-ip") or str(
                next(nets[0].hosts(), nets[0].network_address)
            )
    else:
        out["route-yaml"] = f"{{to: <route-cidr>, via: {gateway}}}"
        out["mac-routes"] = f"<route-address> <route-netmask> {gateway}"
        out["win-active-row"] = f"<route-address>  <route-netmask>  {gateway}  <client-dev>"
        out["win-persistent-row"] = f"<route-address>  <route-netmask>  {gateway}  Default"
        if "service-ip" in out:
            out["probe-ip"] = out["service-ip"]
    wrong = _net(out.get("wrong-route"))
    if wrong is not None:
        out["wrong-address"] = str(wrong.network_address)
        out["wrong-netmask"] = str(wrong.netmask)
    matched = out.pop("_matched", None)
    if matched is not None and same_os:
        out["matched-route"] = _route_text(matched, os_name)
    if dev:
        out["linux-dev-line"] = f"DEV={dev}    # the interface toward {gateway}"
        out["mac-dev-line"] = f"DEV={dev}    # the interface toward {gateway}"
        out["win-ifindex-line"] = f"$idx = (Get-NetIPAddress -IPAddress {dev}).InterfaceIndex"
        out["client-dev"] = dev
    else:
        out.pop("client-dev", None)
        out["linux-dev-line"] = (
            f"DEV=$(ip -o route get {gateway} | grep -o 'dev [^ ]*' | cut -d' ' -f2)"
        )
        out["mac-dev-line"] = f"DEV=$(route -n get {gateway} | awk '/interface:/ {{print $2}}')"
        out["win-ifindex-line"] = (
            f"$idx = (Find-NetRoute -RemoteIPAddress {gateway} | Select-Object -First 1)"
            ".InterfaceIndex"
        )
    out["mac-service-line"] = (
        'SERVICE=$(networksetup -listnetworkserviceorder | grep -B1 "Device: $DEV)" '
        "| head -n1 | sed 's/^([0-9*]*) //')"
    )
    return out


def _is_ip(text: Any) -> bool:
    try:
        ipaddress.ip_address(str(text))
    except ValueError:
        return False
    return True


def _net(text: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(str(text), strict=False)
    except ValueError:
        return None


def _netstat_form(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str:
    """The destination as macOS netstat -rn prints it: 10.96/12, 10.244 (a /16), 10.0.0.1/32."""
    if net.version == 6:
        return str(net)
    octets = str(net.network_address).split(".")
    while len(octets) > 1 and octets[-1] == "0":
        octets.pop()
    shown = ".".join(octets)
    return (
        shown
        if net.prefixlen == 8 * len(octets) and net.prefixlen < 32
        else f"{shown}/{net.prefixlen}"
    )


def _route_text(route: Mapping[str, Any], os_name: str) -> str:
    """A route from route-present's evidence, written the way the OS's own tool shows it."""
    net = _net(route.get("destination"))
    hop = route.get("next_hop")
    dev = route.get("interface") or ""
    metric = route.get("metric")
    if net is None:
        return str(route.get("destination"))
    if os_name == "windows":
        parts = [str(net.network_address), str(net.netmask), hop or "On-link", dev]
        return "  ".join(p for p in [*parts, "" if metric is None else str(metric)] if p)
    if os_name == "macos":
        dest = "default" if net.prefixlen == 0 else _netstat_form(net)
        return "  ".join(p for p in (dest, hop or "link", dev) if p)
    dest = "default" if net.prefixlen == 0 else str(net)
    text = f"{dest} via {hop}" if hop else f"{dest}"
    text += f" dev {dev}" if dev else ""
    return text + (f" metric {metric}" if metric else "")


def _fill(template: str, values: Values, expand: bool) -> str:
    """Replace the placeholders; with `expand`, a line using list values repeats per item."""
    if not expand:
        return _MARKER.sub(lambda m: _one(m, values, None), template)
    lines = []
    for line in template.split("\n"):
        names = [n for n in _MARKER.findall(line) if isinstance(values.get(n), list)]
        count = max((len(values[n]) for n in names), default=0)
        indexes: list[int | None] = list(range(count)) if count else [None]
        for index in indexes:
            lines.append(_MARKER.sub(functools.partial(_one, values=values, index=index), line))
    return "\n".join(lines)


def _one(match: re.Match[str], values: Values, index: int | None) -> str:
    name = match.group(1)
    if name not in PLACEHOLDERS:
        return match.group(0)
    value = values.get(name)
    if value is None or value == []:
        return match.group(0)
    if isinstance(value, list):
        if index is None:
            return ", ".join(value)
        return value[min(index, len(value) - 1)]
    return str(value)


@dataclass(frozen=True)
class RenderedStep:
    """A step with its values filled in, for one OS."""

    where: str  # the heading: "On the gateway 192.168.77.1, as root"
    text: str
    commands: str
    language: str  # the fenced block's language: sh or powershell


def steps(
    entry: Entry, os_name: str | None = None, values: Values | None = None
) -> list[RenderedStep]:
    """The entry's steps for `os_name` (default: this machine's), filled from `values`."""
    os_name = os_name or (values or {}).get("client-os") or client_os()
    filled = _derive(values or {}, os_name)
    out = []
    for step in entry.steps:
        if values and step.only_if:
            name = step.only_if.lstrip("!")
            if (name in values) == step.only_if.startswith("!"):
                continue
        commands = (
            step.commands.pick(os_name) if isinstance(step.commands, PerOs) else step.commands
        )
        language = "powershell" if step.where == "client" and os_name == "windows" else "sh"
        out.append(
            RenderedStep(
                _fill(_where_label(step.where, os_name), filled, False),
                _fill(step.text, filled, False),
                _fill(commands, filled, True),
                language,
            )
        )
    return out


def _where_label(where: str, os_name: str) -> str:
    return {
        "client": f"On this client ({_OS_LABELS[os_name]})",
        "gateway": "On the gateway <gateway-host>, as root",
        "dns-proxy": "On the DNS proxy <dns-ip>",
        "peer": "On <bgp-node>, the node at the other end of the BGP session",
        "node": "On a node (<node-ip>)",
        "router": "On <answered-by>, which sent the ICMP error",
        "cluster": "With kubectl, against the cluster",
    }.get(where, where)


def unfilled(text: str) -> list[str]:
    """The placeholders still in `text`, each once, in order."""
    return list(dict.fromkeys(n for n in _MARKER.findall(text) if n in PLACEHOLDERS))


def render(
    entry: Entry,
    os_name: str | None = None,
    values: Values | None = None,
    markdown: bool = False,
) -> str:
    """The entry as text for a terminal (or Markdown), filled from `values` when given."""
    os_name = os_name or (values or {}).get("client-os") or client_os()
    filled = _derive(values or {}, os_name)
    meaning = _fill(entry.meaning, filled, False)
    done = steps(entry, os_name, values)
    again = _fill("k8sreach doctor <target-arg>", filled, False)
    lines: list[str] = []
    if markdown:
        lines += [meaning, ""]
        for n, step in enumerate(done, 1):
            lead = f"{n}. "
            pad = " " * len(lead)
            lines.append(f"{lead}**{step.where}:** {step.text}")
            if step.commands:
                lines += ["", *(pad + x for x in _fenced(step.commands, step.language))]
            lines.append("")
        lines.append(f"Then run `{again}` again.")
    else:
        lines += [
            f"{entry.id}: {entry.title}",
            f"check: {entry.check}    runs on: {', '.join(entry.where)}",
            "",
            *_wrap(meaning, ""),
            "",
        ]
        for n, step in enumerate(done, 1):
            lines += _wrap(f"{n}. {step.where}: {step.text}", "   ")
            lines += ["      " + x if x else "" for x in step.commands.split("\n") if step.commands]
            lines.append("")
        lines.append(f"Then run `{again}` again.")
    body = "\n".join(lines)
    missing = unfilled(body)
    if missing:
        lines += ["", "Values to fill in:", ""]
        for name in missing:
            item = f"<{name}>: {PLACEHOLDERS[name]}"
            lines.append(f"- `<{name}>`: {PLACEHOLDERS[name]}" if markdown else f"  {item}")
    return "\n".join(lines).rstrip("\n") + "\n"


def _wrap(text: str, indent: str, width: int = 92) -> list[str]:
    """Wrap prose, never inside a `code span` (a route, a command)."""
    import textwrap

    glued = re.sub(r"`[^`]*`", lambda m: m.group(0).replace(" ", "\0"), text)
    lines = textwrap.wrap(glued, width, subsequent_indent=indent, break_on_hyphens=False)
    return [line.replace("\0", " ") for line in lines] or [""]


def _fenced(text: str, language: str) -> list[str]:
    """A fenced code block, its fence longer than any run of backticks inside."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}{language}", *text.split("\n"), fence]


def for_result(result: CheckResult) -> list[Entry]:
    """The entries that apply to a result, the main one first."""
    return [e for k in kinds_of(result) if (e := get(k)) is not None]
