"""Runbooks: every failure kind has an entry, results map to them, steps carry real values."""

from __future__ import annotations

import ipaddress
import re
import subprocess
import sys
from pathlib import Path

import pytest

from checks import bgp_peer_established as bgp
from checks import dns_resolves, route_present, service_exists, tcp_connect
from checks import endpoints_ready as epr
from checks import gateway_forwarding as fwd
from checks import kube_proxy_binary as kpb
from checks import kube_proxy_rules as kpr
from k8sreach import plugins, runbooks
from k8sreach.config import parse_cidr
from k8sreach.dnsprobe import DnsOutcome
from k8sreach.parsers.elf import parse_elf_header
from k8sreach.parsers.iptables import ServiceRules
from k8sreach.parsers.kube_proxy import VersionRun, classify_version_run
from k8sreach.parsers.sysctl import effective_setting
from k8sreach.result import CheckResult, Finding, Hop, Report, Status, failed
from k8sreach.routes import parse_macos_netstat, parse_windows_route_print
from k8sreach.target import Target
from k8sreach.tcpprobe import IcmpReport, TcpOutcome

FIX = Path(__file__).resolve().parent.parent / "fixtures"
ROOT = Path(__file__).resolve().parents[2]
TARGET = Target("mysql-read", "default", "cluster.local", 3306)
SVC_CIDR = (parse_cidr("10.96.0.0/12"),)
POD_CIDR = (parse_cidr("10.244.0.0/16"),)
_HOPS = {
    "route-present": Hop.CLIENT,
    "dns-resolves": Hop.DNS,
    "service-exists": Hop.CLUSTER,
    "endpoints-ready": Hop.CLUSTER,
    "tcp-connect": Hop.SERVICE,
}


def _result(check_id: str, finding: Finding, address: str | None = None) -> CheckResult:
    return CheckResult(
        check_id,
        _HOPS.get(check_id, Hop.GATEWAY),
        finding.status,
        finding.summary,
        finding.evidence,
        finding.remediation,
        1.0,
        address or finding.address,
        finding.caused_by,
    )


def _report(*results: CheckResult) -> Report:
    return Report(TARGET.as_dict(), results, False, 12.0)


def _kind(check_id: str, finding: Finding) -> str | None:
    return runbooks.kind_of(_result(check_id, finding))


# --- the catalogue ------------------------------------------------------------------------------


def test_every_installed_check_has_runbooks_and_a_fallback_entry():
    loaded = plugins.load()
    assert loaded.errors == ()
    for check in loaded.checks:
        kinds = runbooks.kinds_for(check.id)
        assert kinds, f"{check.id} has no runbook"
        assert runbooks.FALLBACK[check.id] in kinds
        assert all(runbooks.get(k).check == check.id for k in kinds)


def test_runbook_ids_are_unique_and_listed_in_path_order():
    ids = [e.id for e in runbooks.entries()]
    assert len(ids) == len(set(ids))
    assert ids[:3] == ["route-missing", "route-default-only", "route-other-next-hop"]
    assert ids[-1] == "ingress-http-other"
    assert runbooks.get("route-missing").where == ("client",)
    assert runbooks.get("bgp-admin-shutdown").where == ("gateway", "peer")
    assert runbooks.get("no-such-runbook") is None


def test_every_placeholder_in_the_templates_is_a_known_one():
    names = set()
    for entry in runbooks.entries():
        texts = [entry.meaning]
        for step in entry.steps:
            texts.append(step.text)
            c = step.commands
            texts += [c.linux, c.macos, c.windows] if isinstance(c, runbooks.PerOs) else [c]
        for text in texts:
            names.update(re.findall(r"<([a-z][a-z0-9-]*)>", text))
    assert names - set(runbooks.PLACEHOLDERS) == set()


def test_client_steps_have_a_command_for_each_os():
    for entry in runbooks.entries():
        for step in entry.steps:
            if step.where == "client":
                assert isinstance(step.commands, runbooks.PerOs), entry.id
                assert all(step.commands.pick(o) for o in runbooks.OS_NAMES), entry.id
            else:
                assert isinstance(step.commands, str), entry.id


def test_generic_runbook_shows_readable_markers_and_explains_them():
    text = runbooks.render(runbooks.get("route-missing"), "linux")
    assert text.startswith("route-missing: no route at all for the cluster ranges\n")
    assert "sudo ip route replace <route-cidr> via <gateway-ip>" in text
    assert "  <gateway-ip>: the edge gateway's address, the next hop for the cluster ranges" in text
    assert text.endswith("\n")


# --- kind_of: from the checks' own findings -----------------------------------------------------


def _routes_judge(routes, gateway="192.168.77.1"):
    dests = [
        ("10.96.86.83", ipaddress.ip_address("10.96.86.83")),
        ("10.96.0.0/12", ipaddress.ip_network("10.96.0.0/12")),
    ]
    return route_present.judge(routes, dests, gateway, platform="linux")


def _linux_routes(*lines: str):
    import json

    from k8sreach.routes import parse_ip_json_route

    return parse_ip_json_route(json.dumps([json.loads(x) for x in lines]))


def test_route_kinds():
    default = '{"dst":"default","gateway":"192.168.77.254","dev":"eth0"}'
    wrong = '{"dst":"10.96.0.0/12","gateway":"192.168.77.2","dev":"eth0"}'
    assert _kind("route-present", _routes_judge([])) == "route-missing"
    assert _kind("route-present", _routes_judge(_linux_routes(default))) == "route-default-only"
    assert _kind("route-present", _routes_judge(_linux_routes(default, wrong))) == (
        "route-other-next-hop"
    )
    unreadable = failed("cannot read this client's routing table: cannot read /proc/net/route")
    assert _kind("route-present", unreadable) == "route-table-unreadable"


def _dns(kind="answer", rcode=None, addresses=(), error=None):
    return DnsOutcome(
        "192.168.77.53",
        53,
        TARGET.fqdn,
        "A",
        "udp",
        kind,
        rcode=rcode,
        addresses=tuple(addresses),
        latency_ms=1.0,
        error=error,
    )


def _classify(outcome, svc=SVC_CIDR, pod=POD_CIDR):
    return dns_resolves.classify(outcome, TARGET, svc, pod)


@pytest.mark.parametrize(
    ("outcome", "kind"),
    [
        (_dns("timeout"), "dns-timeout"),
        (_dns("port-unreachable", error="ECONNREFUSED"), "dns-not-listening"),
        (_dns("unreachable", error="EHOSTUNREACH"), "dns-server-unreachable"),
        (_dns(rcode="NXDOMAIN"), "dns-nxdomain"),
        (_dns(rcode="SERVFAIL"), "dns-servfail"),
        (_dns(rcode="REFUSED"), "dns-refused"),
        (_dns(rcode="NOERROR"), "dns-nodata"),
        (_dns(rcode="NOERROR", addresses=["203.0.113.7"]), "dns-outside-cidr"),
        (_dns("error", error="bad things"), "dns-resolves-other"),
    ],
)
def test_dns_kinds_from_classify(outcome, kind):
    assert _kind("dns-resolves", _classify(outcome)) == kind


def test_dns_kinds_from_the_comparison_with_the_api():
    view = dns_resolves.ApiView("cluster-ip", ("10.96.86.83",))
    stale = _dns(rcode="NOERROR", addresses=["10.96.86.99"])
    nx = _dns(rcode="NXDOMAIN")
    ok = _dns(rcode="NOERROR", addresses=["10.100.0.5"])

    def compare(outcome, v=view, svc=SVC_CIDR):
        first = _classify(outcome, svc, ())
        return dns_resolves.compare_with_api(first, outcome, TARGET, v, svc, ())

    assert _kind("dns-resolves", compare(stale)) == "dns-stale"
    assert _kind("dns-resolves", compare(nx)) == "dns-proxy-not-forwarding"
    wide = (parse_cidr("10.96.0.0/16"),)
    warn = compare(ok, dns_resolves.ApiView("cluster-ip", ("10.100.0.5",)), wide)
    assert warn.status is Status.WARN
    assert _kind("dns-resolves", warn) == "dns-cidr-setting-wrong"
    alias = dns_resolves.ApiView("external-name", external_name="billing.example.com")
    assert _kind("dns-resolves", compare(ok, alias, ())) == "dns-external-name"
    assert _kind("dns-resolves", failed("this client has no DNS server configured")) == (
        "dns-no-server"
    )


def test_dns_transport_and_srv_kinds():
    from checks._dns import combine_transports

    answer = _dns(rcode="NOERROR", addresses=["10.96.86.83"])
    silent = _dns("timeout")
    tcp_only = combine_transports(_classify(answer), answer, silent, None)
    assert tcp_only.status is Status.WARN
    assert _kind("dns-resolves", tcp_only) == "dns-tcp-fails"
    udp_fails = combine_transports(_classify(silent), silent, answer, _classify(answer))
    assert _kind("dns-resolves", udp_fails) == "dns-udp-fails"
    srv = Finding(
        Status.WARN,
        "... no port number for port name mysql",
        {
            "server": "192.168.77.53:53",
            "rcode": "NOERROR",
            "answers": ["10.96.86.83"],
            "srv": {"question": "_mysql._tcp... SRV", "port": None},
        },
    )
    assert _kind("dns-resolves", srv) == "dns-srv-missing"


def _search_result(answered_by):
    evidence = {
        "short_name": "mysql-read.default",
        "search": ["corp.example.net"],
        "ndots": 1,
        "candidates": [{"name": "mysql-read.default.", "suffix": None, "step": "next"}],
        "answered_by": answered_by,
        "server": "192.168.77.53:53",
    }
    finding = Finding(Status.WARN, "mysql-read.default does not resolve ...", evidence)
    return CheckResult("dns-search", Hop.DNS, finding.status, finding.summary, evidence, None, 1.0)


def test_dns_search_kinds_and_the_search_list_for_each_os():
    assert runbooks.kind_of(_search_result("mysql-read.default.corp.example.net.")) == (
        "dns-search-wrong-answer"
    )
    result = _search_result(None)
    assert runbooks.kind_of(result) == "dns-search-not-found"
    values = runbooks.context(_report(result))
    entry = runbooks.get("dns-search-not-found")
    windows = runbooks.render(entry, "windows", values)
    assert (
        'Set-DnsClientGlobalSetting -SuffixSearchList @("svc.cluster.local", "corp.example.net")'
    ) in windows
    assert "Resolve-DnsName mysql-read.default" in windows
    macos = runbooks.render(entry, "macos", values)
    assert 'sudo networksetup -setsearchdomains "$SERVICE" svc.cluster.local corp.example.net' in (
        macos
    )
    linux = runbooks.render(entry, "linux", values)
    assert 'ipv4.dns-search "svc.cluster.local,corp.example.net"' in linux
    assert "getent hosts mysql-read.default" in linux


@pytest.mark.parametrize(
    ("verdict", "kind"),
    [
        ("proxy-differs", "kube-dns-proxy-differs"),
        ("kube-dns-or-path", "kube-dns-down"),
        ("path-to-cluster", "kube-dns-path-broken"),
        ("both-down", "kube-dns-and-proxy-down"),
        ("not-kube-dns", "kube-dns-wrong-address"),
        ("not-compared", "kube-dns-no-answer"),
        ("something-new", "kube-dns-direct-other"),
    ],
)
def test_kube_dns_direct_kinds_from_its_verdict(verdict, kind):
    finding = Finding(Status.WARN, "kube-dns ...", {"server": "10.96.0.10:53", "verdict": verdict})
    assert _kind("kube-dns-direct", finding) == kind


def test_kube_dns_path_steps_carry_its_cluster_ip():
    finding = Finding(
        Status.WARN, "kube-dns ...", {"server": "10.96.0.10:53", "verdict": "path-to-cluster"}
    )
    values = runbooks.context(_report(_result("kube-dns-direct", finding)))
    text = runbooks.render(runbooks.get("kube-dns-path-broken"), "windows", values)
    assert "(Find-NetRoute -RemoteIPAddress 10.96.0.10).NextHop" in text


def _forwarding(live="1", files=None, policy="ACCEPT", rp=None, nft=()):
    return fwd.Forwarding(
        live=live,
        persisted=effective_setting(
            files or [("/etc/sysctl.d/99-k8s.conf", "net.ipv4.ip_forward = 1\n")], fwd.KEY
        ),
        iptables_policy=policy,
        iptables_accepts=[],
        nft_drops=list(nft),
        rp_filter=rp or {},
        cidrs=["10.244.0.0/16", "10.96.0.0/12"],
        tool="iptables-nft-save",
    )


def test_forwarding_kinds_main_one_first():
    off = fwd.judge(_forwarding(live="0", policy="DROP"))
    assert runbooks.kinds_of(_result("gateway-forwarding", off)) == (
        "forwarding-off",
        "forwarding-drop-policy",
    )
    later_zero = [("/etc/sysctl.conf", "net.ipv4.ip_forward = 0\n")]
    assert _kind("gateway-forwarding", fwd.judge(_forwarding(files=later_zero))) == (
        "forwarding-not-persisted"
    )
    strict = {"eth1": {"all": 0, "iface": 1, "effective": 1, "meaning": "strict"}}
    assert _kind("gateway-forwarding", fwd.judge(_forwarding(rp=strict))) == "rp-filter-strict"
    nft = fwd.judge(_forwarding(nft=["inet filter forward"]))
    assert _kind("gateway-forwarding", nft) == "forwarding-nft-drop"


def _peer(info, message="", state="start"):
    return bgp.PeerState("node1", "10.77.2.68", "bgp", state, "12:00:00", info, message)


@pytest.mark.parametrize(
    ("peer", "kind"),
    [
        (_peer("Active", "Socket: Connection refused"), "bgp-peer-refused"),
        (_peer("Active", "Socket: No route to host"), "bgp-peer-unreachable"),
        (_peer("Connect"), "bgp-peer-no-answer"),
        (_peer("Idle", "Received: Bad peer AS"), "bgp-bad-peer-as"),
        (_peer("Idle", "Received: Bad BGP identifier"), "bgp-duplicate-router-id"),
        (_peer("Active", "Received: Administrative shutdown"), "bgp-admin-shutdown"),
        (_peer("Active", "Error: Hold timer expired"), "bgp-hold-timer-expired"),
        (_peer("Passive"), "bgp-peer-passive"),
        (_peer("Idle"), "bgp-peer-idle"),
        (_peer("Weird"), "bgp-peer-established-other"),
    ],
)
def test_bgp_kinds_by_cause(peer, kind):
    finding = bgp.judge([peer], None, [], [], "birdc -s /run/bird/bird.ctl")
    assert _kind("bgp-peer-established", finding) == kind


def test_bgp_kinds_without_a_failing_peer():
    up = _peer("Established", state="up")
    assert _kind("bgp-peer-established", bgp.judge([], None, [], [], "birdc")) == "bgp-no-peers"
    no_route = bgp.judge([up], [], ["10.244.1.10"], ["10.244.0.0/16"], "birdc")
    assert _kind("bgp-peer-established", no_route) == "bgp-route-missing"
    down = failed("calicoctl node status: Calico (BIRD) is not running on the gateway")
    assert _kind("bgp-peer-established", down) == "bgp-not-running"


def test_bgp_sessions_reported_by_calico_name_the_node_not_a_peer_address():
    evidence = {
        "source": "CalicoNodeStatus (node1)",
        "peers": [
            {
                "name": "node1",
                "node": "node1",
                "address": "10.77.2.71",
                "type": "global",
                "state": "start",
                "info": "OpenSent",
                "message": "",
                "cause": "...",
            }
        ],
        "nodes": [{"node": "node1"}],
    }
    finding = Finding(Status.FAIL, "node1 reports its BGP session with 10.77.2.71 ...", evidence)
    result = _result("bgp-peer-established", finding)
    assert runbooks.kind_of(result) == "bgp-negotiation-failed"
    values = runbooks.context(_report(result))
    assert values["bgp-node"] == "node1"
    assert "peer-ip" not in values


def _binary(**kw):
    base = dict(
        path="/usr/local/bin/kube-proxy",
        found_by="--kube-proxy-path",
        file_type="regular file",
        mode="755",
        size=1000,
        elf=parse_elf_header((FIX / "elf-header-x86_64-pie.bin").read_bytes()),
        head=b"\x7fELF",
        machine="x86_64",
        sha256="a" * 64,
        version=classify_version_run(0, "Kubernetes v1.29.3\n", ""),
        expected_sha256="a" * 64,
        expected_from="--kube-proxy-sha256",
    )
    base.update(kw)
    return kpb.Binary(**base)


@pytest.mark.parametrize(
    ("binary", "kind"),
    [
        (_binary(file_type=None), "kube-proxy-missing"),
        (_binary(file_type="directory"), "kube-proxy-not-a-file"),
        (_binary(elf=None, head=b"<!DOCTYPE html>"), "kube-proxy-corrupt"),
        (_binary(sha256="b" * 64), "kube-proxy-corrupt"),
        (_binary(machine="aarch64"), "kube-proxy-wrong-arch"),
        (_binary(mode="644"), "kube-proxy-not-executable"),
        (
            _binary(version=classify_version_run(139, "", "Segmentation fault\n")),
            "kube-proxy-corrupt",
        ),
        (
            _binary(version=classify_version_run(2, "", "panic: boom\n\ngoroutine 1 [running]:\n")),
            "kube-proxy-panic",
        ),
        (
            _binary(version=VersionRun("killed", None, None, "ran over 2 s")),
            "kube-proxy-version-hung",
        ),
        (_binary(version=VersionRun("error", None, None, "exit 1")), "kube-proxy-binary-other"),
    ],
)
def test_kube_proxy_binary_kinds(binary, kind):
    assert _kind("kube-proxy-binary", kpb.judge(binary)) == kind


def test_kube_proxy_rules_kinds():
    def judge(kind):
        rules = ServiceRules(kind, (), ("-A KUBE-SERVICES ...",), "default/mysql-read", ())
        return kpr.judge(rules, None, "10.96.86.83", 3306, "iptables", "mysql-read -n default")

    assert _kind("kube-proxy-rules", judge("reject")) == "rules-no-endpoints"
    assert _kind("kube-proxy-rules", judge("drop")) == "rules-no-endpoints"
    assert _kind("kube-proxy-rules", judge("none")) == "rules-missing"
    unreadable = failed("cannot read the gateway's NAT rules: iptables-save is not installed")
    assert _kind("kube-proxy-rules", unreadable) == "rules-unreadable"
    assert _kind("kube-proxy-rules", judge("dnat")) is None


def _svc(selector=None, ports=None, cluster_ip="10.96.86.83"):
    return {
        "metadata": {"name": "mysql-read", "namespace": "default"},
        "spec": {
            "clusterIP": cluster_ip,
            "selector": selector if selector is not None else {"app": "mysql"},
            "ports": ports or [{"name": "mysql", "port": 3306, "targetPort": 3306}],
        },
    }


def test_service_exists_kinds():
    missing = service_exists.judge_missing(TARGET, ["mysql-reads", "web"])
    assert _kind("service-exists", missing) == "service-missing"
    named = Target("mysql-read", "default", "cluster.local", "nope")
    assert _kind("service-exists", service_exists.judge(_svc(), named)) == "service-port-unknown"
    other = Target("mysql-read", "default", "cluster.local", 9999)
    assert _kind("service-exists", service_exists.judge(_svc(), other)) == (
        "service-port-ambiguous"
    )
    udp = [{"name": "dns", "port": 3306, "protocol": "UDP"}]
    assert _kind("service-exists", service_exists.judge(_svc(ports=udp), TARGET)) == (
        "service-port-not-tcp"
    )


def _pod(name, ready):
    return {
        "metadata": {"name": name, "namespace": "default", "labels": {"app": "mysql"}},
        "spec": {"nodeName": "node1", "containers": [{"name": "db", "ports": []}]},
        "status": {
            "phase": "Running",
            "podIP": "10.244.1.10",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def test_endpoints_ready_kinds():
    port = {"name": "mysql", "port": 3306, "targetPort": 3306}
    none = epr.judge(_svc(), port, [], "endpointslices", pods=[])
    assert _kind("endpoints-ready", none) == "endpoints-no-matching-pods"
    not_ready = epr.judge(_svc(), port, [], "endpointslices", pods=[_pod("mysql-0", False)])
    assert _kind("endpoints-ready", not_ready) == "endpoints-pods-not-ready"
    named = {"name": "mysql", "port": 3306, "targetPort": "mysql"}
    missing_name = epr.judge(_svc(), named, [], "endpointslices", pods=[_pod("mysql-0", True)])
    assert _kind("endpoints-ready", missing_name) == "endpoints-port-name-missing"
    by_hand = epr.judge(_svc(selector={}), port, [], "endpoints")
    assert _kind("endpoints-ready", by_hand) == "endpoints-selectorless"
    unread = epr.judge(_svc(), port, [], "endpointslices", pods=None, pods_problem="forbidden")
    assert _kind("endpoints-ready", unread) == "endpoints-none-ready"


def _tcp(kind, icmp=None, unreachable=None):
    return tcp_connect.classify(
        TcpOutcome("10.96.86.83", 3306, kind, 3.0, "E", "m", unreachable=unreachable, icmp=icmp),
        TARGET,
        2.0,
        "192.168.77.1",
        POD_CIDR,
    )


def test_tcp_kinds_say_who_answered():
    port = IcmpReport("192.168.77.1", 3, 3, "port unreachable", "ECONNREFUSED")
    banned = IcmpReport("10.77.2.254", 3, 13, "communication administratively prohibited", "E")
    host = IcmpReport("10.77.2.254", 3, 1, "host unreachable", "EHOSTUNREACH")
    assert _kind("tcp-connect", _tcp("reset")) == "tcp-reset"
    assert _kind("tcp-connect", _tcp("rejected", port)) == "tcp-rejected-no-endpoints"
    assert _kind("tcp-connect", _tcp("rejected", banned)) == "tcp-rejected"
    assert _kind("tcp-connect", _tcp("refused")) == "tcp-refused"
    assert _kind("tcp-connect", _tcp("timeout")) == "tcp-timeout"
    assert _kind("tcp-connect", _tcp("unreachable", host)) == "tcp-unreachable-router"
    assert _kind("tcp-connect", _tcp("unreachable", unreachable="host")) == (
        "tcp-unreachable-client"
    )
    assert _kind("tcp-connect", _tcp("blocked")) == "tcp-blocked"
    assert _kind("tcp-connect", _tcp("error")) == "tcp-connect-other"
    assert _kind("tcp-connect", _tcp("connected")) is None


def _np_svc(policy="Cluster"):
    svc = _svc(ports=[{"name": "mysql", "port": 3306, "targetPort": 3306, "nodePort": 30306}])
    svc["spec"].update(type="NodePort", externalTrafficPolicy=policy)
    return svc


def test_nodeport_kinds():
    from checks import nodeport_connect as npc

    port = _np_svc()["spec"]["ports"][0]
    nodes = [
        npc.NodeView("node1", "10.77.2.68", "True"),
        npc.NodeView("node2", "10.77.2.69", "True"),
    ]

    def judge(*kinds):
        outcomes = {
            n.name: TcpOutcome(str(n.internal_ip), 30306, k, 2.0)
            for n, k in zip(nodes, kinds, strict=True)
        }
        return npc.judge(_np_svc(), port, nodes, outcomes, TARGET, 2.0)

    assert _kind("nodeport-connect", npc.judge(_np_svc(), port, [], {}, TARGET, 2.0)) == (
        "nodeport-no-ready-nodes"
    )
    assert _kind("nodeport-connect", judge("reset", "refused")) == "nodeport-refused"
    assert _kind("nodeport-connect", judge("timeout", "timeout")) == "nodeport-timeout"
    assert _kind("nodeport-connect", judge("timeout", "unreachable")) == "nodeport-connect-other"
    assert _kind("nodeport-connect", judge("connected", "timeout")) is None


def test_loadbalancer_kinds():
    from checks import loadbalancer_connect as lbc
    from checks._exposure import Resolution

    port = {"name": "mysql", "port": 3306, "targetPort": 3306, "nodePort": 30306}
    one = [lbc.BalancerEntry("192.0.2.10", None)]
    two = [*one, lbc.BalancerEntry("192.0.2.11", None)]

    def judge(entries, *kinds):
        outcomes = {
            e.label: TcpOutcome(e.label, 3306, k, 2.0)
            for e, k in zip(entries[: len(kinds)], kinds, strict=True)
        }
        return lbc.judge(_np_svc(), port, entries, outcomes, TARGET, 2.0)

    assert _kind("loadbalancer-connect", judge([])) == "lb-pending"
    assert _kind("loadbalancer-connect", judge(one, "reset")) == "lb-refused"
    assert _kind("loadbalancer-connect", judge(one, "timeout")) == "lb-timeout"
    assert _kind("loadbalancer-connect", judge(two, "connected", "timeout")) == "lb-partial"
    named = [lbc.BalancerEntry(None, "lb.example.net", Resolution("lb.example.net", "nxdomain"))]
    assert _kind("loadbalancer-connect", judge(named)) == "lb-unresolved"


def _http(kind="response", status=None, body="", backend=None, match=True):
    from checks import ingress_http as ih
    from k8sreach.target import split_url

    url = split_url("http://shop.example.net/cart")
    request = ih.HttpRequest(url, "192.0.2.80", "the Ingress's status.loadBalancer")
    outcome = ih.HttpOutcome(kind, 3.0, status=status, reason="X", body=body)
    rule = None
    if match:
        rule = ih.RuleMatch(
            namespace="shop",
            ingress="web",
            host="shop.example.net",
            path="/",
            path_type="Prefix",
            service="cart",
            port=80,
            ingress_class="nginx",
            addresses=("192.0.2.80",),
            via="host",
        )
    lookup = ih.ApiLookup(True, "namespace shop", None, ({"metadata": {}},), rule, backend)
    return ih.classify(request, outcome, lookup, None, 2.0)


def test_ingress_kinds():
    from checks import ingress_http as ih

    empty = ih.BackendState("shop", "cart", 80)
    ready = ih.BackendState("shop", "cart", 80, ready=("10.244.1.7:8080",))
    page = "<html><center>nginx</center></html>"
    assert _kind("ingress-http", _http("refused")) == "ingress-controller-refused"
    assert _kind("ingress-http", _http("timeout")) == "ingress-controller-timeout"
    assert _kind("ingress-http", _http("tls-error")) == "ingress-tls-error"
    assert _kind("ingress-http", _http(status=404, body=page, match=False)) == "ingress-no-rule"
    assert _kind("ingress-http", _http(status=404, body=page)) == "ingress-not-loaded"
    assert _kind("ingress-http", _http(status=404)) == "ingress-backend-404"
    assert _kind("ingress-http", _http(status=503, backend=empty)) == "ingress-no-endpoints"
    assert _kind("ingress-http", _http(status=503, backend=ready)) == "ingress-backend-error"
    assert _kind("ingress-http", _http(status=502, backend=ready)) == "ingress-backend-error"
    assert _kind("ingress-http", _http(status=429, backend=ready)) == "ingress-http-status"
    values = runbooks.context(_report(_result("ingress-http", _http(status=503, backend=empty))))
    text = runbooks.render(runbooks.get("ingress-no-endpoints"), "linux", values)
    assert "k8sreach doctor cart.shop" in text
    assert "kubectl get endpoints cart -n shop" in text


def test_unexpected_evidence_falls_back_to_the_generic_entry():
    odd = Finding(Status.FAIL, "odd", {"failure": 7, "checked": "x"})
    assert _kind("route-present", odd) == "route-present-other"
    assert _kind("gateway-forwarding", Finding(Status.FAIL, "x", {"rp_filter": "x"})) == (
        "gateway-forwarding-other"
    )
    assert _kind("some-plugin-check", failed("broken")) is None


# --- filled steps: real addresses, for each client OS --------------------------------------------


def _windows_routes():
    return parse_windows_route_print((FIX / "routes" / "windows_route_print.txt").read_text())


def _macos_routes():
    return parse_macos_netstat((FIX / "routes" / "macos_netstat_rn.txt").read_text())


def _route_report(routes, address, platform, gateway="192.168.77.1"):
    dests = [
        (address, ipaddress.ip_address(address)),
        ("10.96.0.0/12", ipaddress.ip_network("10.96.0.0/12")),
    ]
    finding = route_present.judge(routes, dests, gateway, platform=platform)
    return _report(_result("route-present", finding))


def _fixture_route(routes, cidr):
    net = ipaddress.ip_network(cidr)
    return next(r for r in routes if r.destination == net and not r.persistent)


def test_windows_route_steps_use_the_mask_and_interface_of_the_parsed_routes():
    routes = [r for r in _windows_routes() if not str(r.destination).startswith("10.96.")]
    report = _route_report(routes, "10.96.86.83", "win32", gateway="192.168.77.254")
    values = runbooks.context(report)
    entry = runbooks.get(runbooks.kind_of(report.results[0]))
    text = runbooks.render(entry, "windows", values)

    service = _fixture_route(_windows_routes(), "10.96.0.0/12")
    default = _fixture_route(_windows_routes(), "0.0.0.0/0")
    assert entry.id == "route-default-only"
    assert f"route ADD -p 10.96.0.0 MASK {service.destination.netmask} 192.168.77.254" in text
    assert str(service.destination.netmask) == "255.240.0.0"
    # the interface the default route leaves by, from `route print`, picks the adapter
    assert f"0.0.0.0  0.0.0.0  192.168.77.1  {default.interface}  {default.metric}" in text
    assert f"10.96.0.0  255.240.0.0  192.168.77.254  {default.interface}" in text
    assert (
        "(Find-NetRoute -RemoteIPAddress 10.96.86.83).NextHop    # must print 192.168.77.254"
        in (text)
    )
    assert runbooks.unfilled(text) == []


def test_windows_host_route_on_another_interface_is_deleted_then_routed_via_the_gateway():
    routes = _windows_routes()
    report = _route_report(routes, "10.96.0.10", "win32")
    values = runbooks.context(report)
    text = runbooks.render(runbooks.get("route-other-next-hop"), "windows", values)

    wrong = _fixture_route(routes, "10.96.0.10/32")
    right = _fixture_route(routes, "10.96.0.0/12")
    assert runbooks.kind_of(report.results[0]) == "route-other-next-hop"
    shown = f"{wrong.destination.network_address}  255.255.255.255  On-link  {wrong.interface}"
    assert f"(`{shown}  {wrong.metric}`)" in text
    assert "route DELETE 10.96.0.10 MASK 255.255.255.255" in text
    assert "route ADD -p 10.96.0.10 MASK 255.255.255.255 192.168.77.1" in text
    assert f"10.96.0.10  255.255.255.255  192.168.77.1  {right.interface}" in text
    assert runbooks.unfilled(text) == []


def test_windows_dns_steps_pick_the_adapter_by_the_interface_address_of_the_route():
    routes = _windows_routes()
    route = _route_report(routes, "10.96.86.83", "win32").results[0]
    dns = _result("dns-resolves", _classify(_dns(rcode="REFUSED")))
    values = runbooks.context(_report(route, dns))
    text = runbooks.render(runbooks.get("dns-refused"), "windows", values)

    interface = _fixture_route(routes, "10.96.0.0/12").interface
    assert f"$idx = (Get-NetIPAddress -IPAddress {interface}).InterfaceIndex" in text
    assert "Set-DnsClientServerAddress -InterfaceIndex $idx -ServerAddresses 192.168.77.53" in text
    assert "Add-DnsClientNrptRule -Namespace '.cluster.local' -NameServers 192.168.77.53" in text
    assert "Resolve-DnsName mysql-read.default.svc.cluster.local. -Server 192.168.77.53" in text
    assert "nslookup mysql-read.default.svc.cluster.local. 192.168.77.53" in text


def test_macos_route_steps_use_the_interface_and_netstat_form_of_the_parsed_routes():
    all_routes = _macos_routes()
    routes = [r for r in all_routes if not str(r.destination).startswith("10.96.")]
    report = _route_report(routes, "10.96.86.83", "darwin", gateway="192.168.77.254")
    values = runbooks.context(report)
    text = runbooks.render(runbooks.get("route-default-only"), "macos", values)

    service = _fixture_route(all_routes, "10.96.0.0/12")
    netstat_dest = service.raw.split()[0]
    assert netstat_dest == "10.96/12"
    assert "sudo route -n add -net 10.96.0.0/12 192.168.77.254" in text
    assert f"DEV={service.interface}    # the interface toward 192.168.77.254" in text
    assert f"grep '^{netstat_dest} '" in text
    assert (
        'sudo networksetup -setadditionalroutes "$SERVICE" 10.96.0.0 '
        f"{service.destination.netmask} 192.168.77.254"
    ) in text
    assert runbooks.unfilled(text) == []


def test_macos_host_route_via_the_vpn_is_deleted_first():
    routes = _macos_routes()
    report = _route_report(routes, "10.96.0.10", "darwin")
    text = runbooks.render(runbooks.get("route-other-next-hop"), "macos", runbooks.context(report))

    wrong = _fixture_route(routes, "10.96.0.10/32")
    assert f"(`10.96.0.10/32  {wrong.gateway}  {wrong.interface}`)" in text
    assert "sudo route -n delete -net 10.96.0.10/32" in text
    assert "sudo route -n add -net 10.96.0.10/32 192.168.77.1" in text
    assert "DEV=en0" in text
    assert "networksetup -setdnsservers" not in text


def test_linux_route_steps_with_real_values_and_the_persistent_forms():
    default = '{"dst":"default","gateway":"192.168.77.254","dev":"eth0"}'
    report = _report(_result("route-present", _routes_judge(_linux_routes(default))))
    text = runbooks.render(runbooks.get("route-default-only"), "linux", runbooks.context(report))
    assert "sudo ip route replace 10.96.0.0/12 via 192.168.77.1" in text
    assert "DEV=eth0    # the interface toward 192.168.77.1" in text
    assert 'sudo nmcli connection modify "$CONN" +ipv4.routes "10.96.0.0/12 192.168.77.1"' in text
    assert "#     - {to: 10.96.0.0/12, via: 192.168.77.1}" in text
    assert "#   up ip route replace 10.96.0.0/12 via 192.168.77.1" in text
    assert "ip route get 10.96.86.83    # must say: via 192.168.77.1" in text
    assert "(`default via 192.168.77.254 dev eth0`)" in text
    assert "Then run `k8sreach doctor mysql-read.default:3306` again." in text
    assert runbooks.unfilled(text) == []


def test_route_missing_without_an_interface_finds_it_at_run_time():
    report = _report(_result("route-present", _routes_judge([])))
    text = runbooks.render(runbooks.get("route-missing"), "linux", runbooks.context(report))
    assert "DEV=$(ip -o route get 192.168.77.1 | grep -o 'dev [^ ]*' | cut -d' ' -f2)" in text
    text = runbooks.render(runbooks.get("route-missing"), "windows", runbooks.context(report))
    assert "route ADD -p 10.96.0.0 MASK 255.240.0.0 192.168.77.1" in text
    assert "Active Routes must list: 10.96.0.0  255.240.0.0  192.168.77.1\n" in text


def test_gateway_steps_carry_the_files_interfaces_and_ranges():
    files = [("/etc/sysctl.conf", "net.ipv4.ip_forward = 0\n")]
    strict = {"eth1": {"all": 0, "iface": 1, "effective": 1, "meaning": "strict"}}
    finding = fwd.judge(_forwarding(live="0", files=files, policy="DROP", rp=strict))
    values = runbooks.context(_report(_result("gateway-forwarding", finding, "192.168.77.1")))

    off = runbooks.render(runbooks.get("forwarding-off"), "linux", values)
    assert "On the gateway 192.168.77.1, as root: Turn forwarding on now." in off
    assert "sysctl -w net.ipv4.ip_forward=1" in off
    assert "net.ipv4.ip_forward = 1/' /etc/sysctl.conf" in off
    assert "99-ip-forward.conf" not in off
    drop = runbooks.render(runbooks.get("forwarding-drop-policy"), "windows", values)
    assert 'iptables -I "$CHAIN" -d 10.244.0.0/16 -j ACCEPT' in drop
    assert 'iptables -I "$CHAIN" -s 10.96.0.0/12 -j ACCEPT' in drop
    rp = runbooks.render(runbooks.get("rp-filter-strict"), "linux", values)
    assert "sysctl -w net.ipv4.conf.eth1.rp_filter=2" in rp
    assert "echo 'net.ipv4.conf.eth1.rp_filter = 2' >> /etc/sysctl.d/99-rp-filter.conf" in rp


def test_bgp_and_kube_proxy_steps_carry_the_peer_socket_path_and_checksum():
    peer = _peer("Active", "Received: Administrative shutdown")
    session = bgp.judge([peer], None, [], [], "birdc -s /run/bird/bird.ctl")
    binary = kpb.judge(
        _binary(sha256="b" * 64, expected_from="the reference root@10.77.2.68:/usr/local/bin/kp")
    )
    values = runbooks.context(
        _report(
            _result("bgp-peer-established", session, "192.168.77.1"),
            _result("kube-proxy-binary", binary, "192.168.77.1"),
        )
    )
    text = runbooks.render(runbooks.get("bgp-admin-shutdown"), "linux", values)
    assert "birdc -s /run/bird/bird.ctl show protocols all node1" in text
    assert "birdc -s /run/bird/bird.ctl restart node1" in text
    assert "On 10.77.2.68, the node at the other end of the BGP session" in text
    kp = runbooks.render(runbooks.get("kube-proxy-corrupt"), "linux", values)
    assert "scp root@10.77.2.68:/usr/local/bin/kube-proxy /tmp/kube-proxy.new" in kp
    assert f"sha256sum /tmp/kube-proxy.new    # must print {'a' * 64}" in kp


# --- the command line ---------------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "k8sreach", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def test_runbook_command_lists_every_entry():
    out = _cli("runbook")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["ID", "CHECK", "FAILURE"]
    listed = [line.split()[0] for line in lines[2:]]
    assert listed == [e.id for e in runbooks.entries()]


def test_runbook_command_prints_the_windows_route_form():
    out = _cli("runbook", "route-missing", "--os", "windows")
    assert out.returncode == 0, out.stderr
    assert "route ADD -p <route-address> MASK <route-netmask> <gateway-ip>" in out.stdout
    assert "On this client (Windows, elevated PowerShell)" in out.stdout


def test_unknown_runbook_is_a_usage_error_on_one_line():
    out = _cli("runbook", "no-such-runbook")
    assert out.returncode == 2
    assert out.stdout == ""
    assert out.stderr.startswith("k8sreach: error: no runbook 'no-such-runbook' (runbooks: ")
    assert out.stderr.count("\n") == 1
