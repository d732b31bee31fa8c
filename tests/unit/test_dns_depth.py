"""DNS in depth: UDP against TCP, SRV for named ports, the client's search list, and kube-dns
asked directly; servers are tests/dnsfake.py fakes on 127.0.0.1."""

from __future__ import annotations

import ipaddress
import socket
import time
from pathlib import Path

import dns.rcode
import pytest

from checks import dns_search
from checks.dns_resolves import DnsResolves
from checks.dns_search import (
    Candidate,
    DnsSearch,
    SearchConfig,
    candidates,
    judge,
    parse_resolv_conf,
    remediation,
    resolve_order,
)
from checks.kube_dns_direct import KubeDnsDirect, kube_dns_address
from k8sreach import runner
from k8sreach.check import Check
from k8sreach.config import _PARSERS, ConfigError, Endpoint, Settings, load_profile
from k8sreach.context import RunContext
from k8sreach.dnsprobe import DnsOutcome, query, query_tcp
from k8sreach.result import Finding, Hop, Status, failed
from k8sreach.target import parse_target
from tests.dnsfake import LoopbackDns, question, reply

FQDN = "mysql-read.default.svc.cluster.local."
CLUSTER_IP = "10.96.86.83"
SRV_NAME = "_mysql._tcp.mysql-read.default.svc.cluster.local."
TARGET = parse_target("mysql-read.default")
LAB_RESOLV_CONF = (
    "nameserver 192.168.77.53\n"
    "search default.svc.cluster.local svc.cluster.local cluster.local\n"
    "options timeout:2 attempts:2\n"
)


def _zone(records: dict[tuple[str, str], list[str]], *, ra: bool = False):
    """An answer function: NXDOMAIN unless (name, type) has records."""

    def answer(q: bytes) -> list[bytes]:
        key = question(q)
        if key not in records:
            return [reply(q, rcode=dns.rcode.NXDOMAIN, ra=ra)]
        return [reply(q, records=records[key], ra=ra)]

    return answer


CLUSTER = _zone({(FQDN, "A"): [f"{FQDN} 5 IN A {CLUSTER_IP}"]})


def _closed_port(kind: int = socket.SOCK_DGRAM) -> int:
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _run_check(chk: Check, settings: Settings, target=TARGET) -> Finding:
    return chk.run(RunContext(settings, target))


def _dns(port: int, timeout: float = 0.5, **kw) -> Settings:
    return Settings(dns=Endpoint("127.0.0.1", port), timeout=timeout, **kw)


# ---- TCP transport -----------------------------------------------------------------------


def test_tcp_query_gets_the_answer_with_its_flags():
    with LoopbackDns(_zone({(FQDN, "A"): [f"{FQDN} 5 IN A {CLUSTER_IP}"]}, ra=True)) as srv:
        out = query_tcp("127.0.0.1", srv.port, FQDN, "A", 1.0)
    assert (out.kind, out.transport, out.rcode, out.addresses) == (
        "answer",
        "tcp",
        "NOERROR",
        (CLUSTER_IP,),
    )
    assert out.flags == ("AA", "QR", "RA", "RD")
    assert out.authoritative and out.recursion_available and not out.truncated


def test_tcp_query_to_a_closed_port_is_refused():
    with LoopbackDns(CLUSTER, tcp=False) as srv:
        out = query_tcp("127.0.0.1", srv.port, FQDN, "A", 1.0)
    assert (out.kind, out.error) == ("port-unreachable", "ECONNREFUSED")


def test_tcp_garbage_and_mismatched_messages_are_ignored_until_the_real_one():
    def answer(q):
        wrong_id = bytearray(reply(q, records=[f"{FQDN} 5 IN A 6.6.6.6"]))
        wrong_id[0] ^= 0xFF
        return [b"\x00junk", bytes(wrong_id), reply(q, records=[f"{FQDN} 5 IN A {CLUSTER_IP}"])]

    with LoopbackDns(CLUSTER, tcp=answer) as srv:
        out = query_tcp("127.0.0.1", srv.port, FQDN, "A", 1.0)
    assert out.addresses == (CLUSTER_IP,)
    assert out.ignored_replies == 2


def test_silent_tcp_server_is_a_timeout_bounded_by_the_probe_timeout():
    with LoopbackDns(CLUSTER, tcp=lambda q: []) as srv:
        start = time.monotonic()
        out = query_tcp("127.0.0.1", srv.port, FQDN, "A", 0.3)
        elapsed = time.monotonic() - start
    assert (out.kind, out.latency_ms) == ("timeout", 300.0)
    assert elapsed < 0.6


def test_tcp_connection_closed_without_an_answer_is_an_error():
    with LoopbackDns(CLUSTER, tcp=lambda q: None) as srv:
        out = query_tcp("127.0.0.1", srv.port, FQDN, "A", 1.0)
    assert (out.kind, out.error) == ("error", "the server closed the connection without an answer")


def test_truncated_udp_answer_is_asked_again_over_tcp():
    def udp(q):
        return [reply(q, tc=True)]

    with LoopbackDns(udp, tcp=CLUSTER) as srv:
        out = query("127.0.0.1", srv.port, FQDN, "A", 1.0)
    assert (out.transport, out.addresses) == ("tcp", (CLUSTER_IP,))
    assert out.notes[0] == "the UDP answer was truncated (TC); asked again over TCP"


def test_truncated_udp_answer_with_tcp_refused_says_truncated_not_nothing_listening():
    with LoopbackDns(lambda q: [reply(q, tc=True)], tcp=False) as srv:
        finding = _run_check(DnsResolves(), _dns(srv.port))
    assert finding.status is Status.FAIL
    assert finding.summary == (
        f"the UDP answer from 127.0.0.1:{srv.port} was truncated (TC) and TCP to the server is "
        f"refused (nothing listens on TCP {srv.port})"
    )
    assert finding.evidence["udp"]["outcome"] == "port-unreachable"
    assert "ICMP" not in finding.remediation
    assert f"listen on TCP {srv.port} as well as UDP" in finding.remediation
    assert f"`dig +tcp @127.0.0.1 -p {srv.port} {FQDN}`" in finding.remediation


def test_truncated_udp_answer_with_a_silent_tcp_port_says_the_retry_got_no_answer():
    with LoopbackDns(lambda q: [reply(q, tc=True)], tcp=lambda q: []) as srv:
        finding = _run_check(DnsResolves(), _dns(srv.port, timeout=0.4))
    assert finding.summary == (
        f"the UDP answer from 127.0.0.1:{srv.port} was truncated (TC) and the retry over TCP "
        "got no answer within 0.4 s"
    )


def test_truncated_then_refused_reads_the_same_in_other_checks_summaries():
    from checks._dns import failure_text

    with LoopbackDns(lambda q: [reply(q, tc=True)], tcp=False) as srv:
        out = query("127.0.0.1", srv.port, FQDN, "A", 1.0)
    assert out.udp_truncated is True
    assert failure_text(out) == (
        f"a truncated (TC) answer over UDP, then TCP connection refused (nothing listens on TCP "
        f"{srv.port})"
    )


def test_tcp_refusal_alone_is_not_called_an_icmp_port_unreachable():
    from checks.dns_resolves import classify

    with LoopbackDns(CLUSTER, tcp=False) as srv:
        out = query_tcp("127.0.0.1", srv.port, FQDN, "A", 1.0)
    finding = classify(out, TARGET, (), ())
    assert finding.summary == (
        f"TCP to 127.0.0.1:{srv.port} is refused (nothing listens on TCP {srv.port})"
    )


# ---- dns-resolves: UDP against TCP ---------------------------------------------------------


def test_udp_and_tcp_answering_passes_with_evidence_per_transport():
    with LoopbackDns(CLUSTER) as srv:
        finding = _run_check(DnsResolves(), _dns(srv.port))
    assert finding.status is Status.PASS
    assert finding.summary.startswith(f"{FQDN} -> {CLUSTER_IP} in ")
    ev = finding.evidence
    assert (ev["outcome"], ev["udp"]["outcome"], ev["tcp"]["outcome"]) == ("answer",) * 3
    assert ev["udp"]["answers"] == ev["tcp"]["answers"] == [CLUSTER_IP]
    assert "AA" in ev["tcp"]["flags"]
    assert "RA" not in ev["udp"]["flags"]
    assert finding.facts == {"address": CLUSTER_IP, "addresses": [CLUSTER_IP]}


def test_udp_answering_while_tcp_is_refused_keeps_the_address_but_warns():
    with LoopbackDns(CLUSTER, tcp=False) as srv:
        finding = _run_check(DnsResolves(), _dns(srv.port))
    assert finding.status is Status.WARN
    assert finding.summary.endswith("; answers over UDP only: large answers (TC) will fail")
    assert finding.evidence["tcp"]["error"] == "ECONNREFUSED"
    assert finding.facts["address"] == CLUSTER_IP
    assert f"`dig +tcp @127.0.0.1 -p {srv.port} {FQDN}`" in finding.remediation
    assert "(nothing listens on TCP" in finding.remediation


def test_udp_failing_while_tcp_answers_fails_and_says_so():
    with LoopbackDns(lambda q: [], tcp=CLUSTER) as srv:
        finding = _run_check(DnsResolves(), _dns(srv.port, timeout=0.3))
    assert finding.status is Status.FAIL
    assert finding.summary == (
        f"no answer from 127.0.0.1:{srv.port} within 0.3 s, but over TCP it answers "
        f"{CLUSTER_IP}: UDP to the DNS server fails"
    )
    assert finding.facts["address"] == CLUSTER_IP
    assert "UDP port" in finding.remediation


def test_udp_and_tcp_are_asked_at_once_within_one_probe_timeout():
    with LoopbackDns(lambda q: [], tcp=lambda q: []) as srv:
        start = time.monotonic()
        finding = _run_check(DnsResolves(), _dns(srv.port, timeout=0.4))
        elapsed = time.monotonic() - start
    assert finding.summary == f"no answer from 127.0.0.1:{srv.port} within 0.4 s"
    assert finding.evidence["tcp"]["outcome"] == "timeout"
    assert elapsed < 0.7


def test_refused_without_recursion_available_says_the_server_does_not_forward():
    with LoopbackDns(lambda q: [reply(q, rcode=dns.rcode.REFUSED, aa=False)]) as srv:
        finding = _run_check(DnsResolves(), _dns(srv.port))
    assert finding.summary.startswith("REFUSED:")
    assert "Its answer has no RA flag: it offers no recursion" in finding.remediation


# ---- dns-resolves: SRV for named ports -----------------------------------------------------


def test_named_port_gets_its_number_from_the_srv_record():
    zone = _zone(
        {
            (FQDN, "A"): [f"{FQDN} 5 IN A {CLUSTER_IP}"],
            (SRV_NAME, "SRV"): [f"{SRV_NAME} 5 IN SRV 0 100 3306 {FQDN}"],
        }
    )
    with LoopbackDns(zone) as srv:
        finding = _run_check(
            DnsResolves(), _dns(srv.port), parse_target("mysql-read.default:mysql")
        )
    assert finding.status is Status.PASS
    assert finding.summary.endswith("; port mysql is 3306 (SRV)")
    assert finding.facts["port"] == 3306
    assert finding.evidence["srv"]["question"] == f"{SRV_NAME} SRV"
    assert finding.evidence["srv"]["records"] == [f"0 100 3306 {FQDN}"]
    assert finding.evidence["srv"]["port"] == 3306


def test_named_port_lets_tcp_connect_run_on_the_srv_port():
    from checks.tcp_connect import TcpConnect

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    zone = _zone(
        {
            (FQDN, "A"): [f"{FQDN} 5 IN A 127.0.0.1"],
            (SRV_NAME, "SRV"): [f"{SRV_NAME} 5 IN SRV 0 100 {port} {FQDN}"],
        }
    )
    try:
        with LoopbackDns(zone) as srv:
            report = runner.run(
                [DnsResolves(), TcpConnect()],
                _dns(srv.port),
                parse_target("mysql-read.default:mysql"),
            )
    finally:
        listener.close()
    rows = _rows(report)
    assert rows["dns-resolves"].summary.endswith(f"; port mysql is {port} (SRV)")
    assert rows["tcp-connect"].status is Status.PASS
    assert report.reachable is True


def test_named_port_without_srv_record_warns_that_the_number_is_unknown():
    with LoopbackDns(CLUSTER) as srv:
        finding = _run_check(
            DnsResolves(), _dns(srv.port), parse_target("mysql-read.default:mysql")
        )
    assert finding.status is Status.WARN
    assert finding.summary.endswith(
        f"; no port number for port name mysql: {SRV_NAME} SRV got NXDOMAIN over UDP"
    )
    assert "port" not in finding.facts
    assert "`k8sreach doctor mysql-read.default:PORT`" in finding.remediation


def test_numeric_port_asks_no_srv_record():
    with LoopbackDns(CLUSTER) as srv:
        _run_check(DnsResolves(), _dns(srv.port), parse_target("mysql-read.default:3306"))
        asked = {question(q) for q in srv.queries}
    assert asked == {(FQDN, "A")}


# ---- dns-search: the client's resolver configuration --------------------------------------


def test_lab_resolv_conf_gives_the_cluster_search_list_and_ndots_1():
    config = parse_resolv_conf(LAB_RESOLV_CONF)
    assert config.search == ("default.svc.cluster.local", "svc.cluster.local", "cluster.local")
    assert config.ndots == 1
    assert config.nameservers == ("192.168.77.53",)
    assert config.lines == ("search default.svc.cluster.local svc.cluster.local cluster.local",)


def test_last_of_search_and_domain_wins():
    assert parse_resolv_conf("search a.example b.example\ndomain corp.example\n").search == (
        "corp.example",
    )
    assert parse_resolv_conf("domain corp.example\nsearch a.example. B.example\n").search == (
        "a.example",
        "b.example",
    )


def test_ndots_is_the_last_given_capped_at_15_and_ignores_garbage():
    assert parse_resolv_conf("options ndots:5\n").ndots == 5
    assert parse_resolv_conf("options ndots:5\noptions ndots:2 rotate\n").ndots == 2
    assert parse_resolv_conf("options ndots:40\n").ndots == 15
    assert parse_resolv_conf("options ndots:x\n").ndots == 1


def test_localdomain_and_res_options_override_the_file():
    config = parse_resolv_conf(
        LAB_RESOLV_CONF, env={"LOCALDOMAIN": "corp.example", "RES_OPTIONS": "ndots:3"}
    )
    assert (config.search, config.ndots) == (("corp.example",), 3)


def test_without_search_line_the_host_names_domain_is_the_search_list():
    config = parse_resolv_conf("nameserver 10.0.0.2\n", hostname="laptop.corp.example")
    assert config.search == ("corp.example",)
    assert parse_resolv_conf("nameserver 10.0.0.2\n", hostname="laptop").search == ()


def test_comments_are_not_search_domains():
    config = parse_resolv_conf("# search wrong.example\nsearch a.example # b.example\n")
    assert config.search == ("a.example",)


def test_dotted_short_name_is_asked_as_is_first_with_ndots_1():
    names = candidates("mysql-read.default", parse_resolv_conf(LAB_RESOLV_CONF))
    assert [c.name for c in names] == [
        "mysql-read.default.",
        "mysql-read.default.default.svc.cluster.local.",
        "mysql-read.default.svc.cluster.local.",
        "mysql-read.default.cluster.local.",
    ]


def test_with_ndots_5_the_search_list_comes_first_and_the_name_last():
    config = parse_resolv_conf("search svc.cluster.local corp.example\noptions ndots:5\n")
    assert [c.name for c in candidates("mysql-read.default", config)] == [
        "mysql-read.default.svc.cluster.local.",
        "mysql-read.default.corp.example.",
        "mysql-read.default.",
    ]


def _out(name: str, kind: str = "answer", rcode: str | None = "NOERROR", *addresses: str):
    latency = 300.0 if kind == "timeout" else 1.0
    return DnsOutcome(
        "127.0.0.1", 53, name, "A", "udp", kind, rcode, (), tuple(addresses), latency_ms=latency
    )


def _names(*suffixes: str | None, short: str = "mysql-read.default") -> list[Candidate]:
    return [Candidate(f"{short}.{s}." if s else f"{short}.", s) for s in suffixes]


def test_first_failures_of_the_as_is_name_and_nxdomain_go_on_to_the_answer():
    names = _names(None, "default.svc.cluster.local", "svc.cluster.local")
    outs = [
        _out(names[0].name, rcode="REFUSED"),
        _out(names[1].name, rcode="NXDOMAIN"),
        _out(names[2].name, "answer", "NOERROR", CLUSTER_IP),
    ]
    res = resolve_order(names, outs)
    assert (res.winner, res.stopped, res.steps) == (2, None, ("next", "next", "answered"))


def test_refused_in_the_search_loop_ends_it_but_the_name_as_is_is_still_tried():
    names = _names("corp.example", "svc.cluster.local", None)
    outs = [
        _out(names[0].name, rcode="REFUSED"),
        _out(names[1].name, "answer", "NOERROR", CLUSTER_IP),
        _out(names[2].name, rcode="NXDOMAIN"),
    ]
    res = resolve_order(names, outs)
    assert (res.winner, res.stopped, res.steps) == (None, 0, ("stopped", "not tried", "failed"))


def test_servfail_and_nodata_in_the_search_loop_go_on():
    names = _names("a.example", "b.example", "svc.cluster.local")
    outs = [
        _out(names[0].name, rcode="SERVFAIL"),
        _out(names[1].name),
        _out(names[2].name, "answer", "NOERROR", CLUSTER_IP),
    ]
    assert resolve_order(names, outs).winner == 2


def test_nothing_listening_ends_the_whole_lookup():
    names = _names(None, "svc.cluster.local")
    outs = [_out(names[0].name, "port-unreachable", None), _out(names[1].name)]
    res = resolve_order(names, outs)
    assert (res.winner, res.stopped, res.steps) == (None, 0, ("aborted", "not tried"))


# ---- dns-search: judgement -----------------------------------------------------------------


def _judge(config: SearchConfig, answers: dict[str, tuple[str, ...] | str], os_name="linux"):
    names = candidates("mysql-read.default", config)
    outs = []
    for c in names:
        got = answers.get(c.name, "NXDOMAIN")
        outs.append(
            _out(c.name, "answer", got, *())
            if isinstance(got, str)
            else _out(c.name, "answer", "NOERROR", *got)
        )
    fqdn = _out(FQDN, "answer", "NOERROR", CLUSTER_IP)
    return judge(TARGET, config, names, outs, fqdn, "127.0.0.1:53", os_name, "eth0")


def test_short_name_found_through_svc_cluster_local_passes():
    finding = _judge(
        parse_resolv_conf(LAB_RESOLV_CONF),
        {"mysql-read.default.": "REFUSED", FQDN: (CLUSTER_IP,)},
    )
    assert finding.status is Status.PASS
    assert finding.summary == (
        f"mysql-read.default -> {CLUSTER_IP} as {FQDN} (search domain svc.cluster.local, "
        "try 3 of 4), as the FQDN"
    )
    assert finding.evidence["answered_by"] == FQDN
    assert [c["step"] for c in finding.evidence["candidates"]] == [
        "next",
        "next",
        "answered",
        "not tried",
    ]
    assert finding.evidence["order"] == (
        "the name as is first (1 dot >= ndots 1), then the search list"
    )


def test_short_name_failing_while_the_fqdn_resolves_is_a_search_domain_warning():
    config = parse_resolv_conf("nameserver 192.168.77.53\nsearch corp.example\n")
    finding = _judge(config, {"mysql-read.default.": "REFUSED"})
    assert finding.status is Status.WARN
    assert finding.summary == (
        "mysql-read.default does not resolve with this client's search list (corp.example; "
        "ndots 1) while the FQDN does: a search-domain problem on this client, not a DNS outage"
    )
    assert "put `search svc.cluster.local corp.example` in /etc/resolv.conf" in (
        finding.remediation
    )
    assert "`sudo resolvectl domain eth0 svc.cluster.local corp.example`" in finding.remediation
    assert "`getent hosts mysql-read.default`" in finding.remediation


def test_a_refused_search_domain_is_named_as_where_the_lookup_stops():
    config = parse_resolv_conf("search corp.example svc.cluster.local\noptions ndots:5\n")
    finding = _judge(config, {"mysql-read.default.corp.example.": "REFUSED", FQDN: (CLUSTER_IP,)})
    assert finding.status is Status.WARN
    assert finding.summary.endswith(
        "; the lookup stops at mysql-read.default.corp.example. (REFUSED over UDP)"
    )
    assert (
        "The resolver gives up at mysql-read.default.corp.example.: after a REFUSED, a timeout "
        "or nothing listening it tries no further search domain, so svc.cluster.local is never "
        "asked."
    ) in finding.remediation


def test_short_name_resolving_elsewhere_first_is_a_search_domain_warning():
    config = parse_resolv_conf("search corp.example svc.cluster.local\noptions ndots:5\n")
    finding = _judge(
        config,
        {"mysql-read.default.corp.example.": ("203.0.113.7",), FQDN: (CLUSTER_IP,)},
    )
    assert finding.status is Status.WARN
    assert finding.summary == (
        "mysql-read.default -> 203.0.113.7 as mysql-read.default.corp.example. (search domain "
        f"corp.example, try 1 of 3), not the FQDN's {CLUSTER_IP}: a search-domain problem on "
        "this client, not a DNS outage"
    )


def test_remediation_is_written_for_each_client_os():
    config = parse_resolv_conf("search corp.example\n")
    windows = remediation("win32", config, "cluster.local", "mysql-read.default")
    macos = remediation("darwin", config, "cluster.local", "mysql-read.default")
    resolved = remediation(
        "linux",
        parse_resolv_conf("nameserver 127.0.0.53\nsearch corp.example\n"),
        "cluster.local",
        "mysql-read.default",
        "wlan0",
    )
    assert (
        'Set-DnsClientGlobalSetting -SuffixSearchList @("svc.cluster.local", "corp.example")'
        in windows
    )
    assert "`Resolve-DnsName mysql-read.default`" in windows
    assert 'networksetup -setsearchdomains "<service>" svc.cluster.local corp.example' in macos
    assert resolved.startswith(
        "Linux (systemd-resolved manages /etc/resolv.conf): `sudo resolvectl domain wlan0 "
        "svc.cluster.local corp.example`"
    )


def test_fqdn_failing_too_is_not_a_search_domain_problem():
    names = candidates("mysql-read.default", parse_resolv_conf(LAB_RESOLV_CONF))
    outs = [_out(c.name, "timeout", None) for c in names]
    finding = judge(TARGET, parse_resolv_conf(LAB_RESOLV_CONF), names, outs, outs[2], "x:53")
    assert finding.status is Status.FAIL
    assert finding.summary == (
        f"the FQDN {FQDN} does not resolve either (no answer over UDP within 0.3 s): not a "
        "search-domain problem"
    )


@pytest.fixture
def resolv_conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("LOCALDOMAIN", raising=False)
    monkeypatch.delenv("RES_OPTIONS", raising=False)
    path = tmp_path / "resolv.conf"
    monkeypatch.setattr(dns_search, "RESOLV_CONF", str(path))

    def write(text: str) -> Path:
        path.write_text(text)
        return path

    return write


def test_dns_search_asks_every_candidate_of_the_clients_search_list(resolv_conf):
    resolv_conf(LAB_RESOLV_CONF)
    with LoopbackDns(CLUSTER) as srv:
        finding = _run_check(DnsSearch(), _dns(srv.port))
        asked = sorted(question(q)[0] for q in srv.queries)
    assert finding.status is Status.PASS
    assert finding.evidence["config_source"].endswith("resolv.conf")
    assert asked == sorted(
        c.name for c in candidates("mysql-read.default", parse_resolv_conf(LAB_RESOLV_CONF))
    )


def test_dns_search_with_a_wrong_search_domain_warns_while_dns_resolves_passes(resolv_conf):
    resolv_conf("nameserver 192.168.77.53\nsearch example.invalid\n")
    with LoopbackDns(CLUSTER) as srv:
        report = runner.run([DnsResolves(), DnsSearch()], _dns(srv.port), TARGET)
    rows = {r.id: r for r in report.results}
    assert rows["dns-resolves"].status is Status.PASS
    assert rows["dns-search"].status is Status.WARN
    assert "a search-domain problem on this client, not a DNS outage" in rows["dns-search"].summary
    assert report.first_failure is None


def test_dns_search_failure_with_a_dead_server_is_caused_by_dns_resolves(resolv_conf):
    resolv_conf(LAB_RESOLV_CONF)
    port = _closed_port()
    report = runner.run([DnsResolves(), DnsSearch()], _dns(port), TARGET)
    rows = {r.id: r for r in report.results}
    assert rows["dns-resolves"].status is Status.FAIL
    assert rows["dns-search"].status is Status.FAIL
    assert rows["dns-search"].caused_by == "dns-resolves"
    assert report.first_failure.id == "dns-resolves"


def test_dns_search_queries_end_within_one_probe_timeout(resolv_conf):
    resolv_conf("search a.example b.example c.example d.example\noptions ndots:5\n")
    with LoopbackDns(lambda q: []) as srv:
        start = time.monotonic()
        finding = _run_check(DnsSearch(), _dns(srv.port, timeout=0.3))
        elapsed = time.monotonic() - start
    assert finding.status is Status.FAIL
    assert elapsed < 0.6


# ---- kube-dns-direct -----------------------------------------------------------------------


def test_kube_dns_address_is_the_flag_or_the_10th_address_of_the_service_cidr():
    net = ipaddress.ip_network("10.96.0.0/12")
    assert kube_dns_address(Settings(kube_dns=Endpoint("10.0.0.10", 5353))) == (
        Endpoint("10.0.0.10", 5353),
        "--kube-dns",
    )
    endpoint, origin = kube_dns_address(Settings(service_cidr=(net,)))
    assert endpoint == Endpoint("10.96.0.10", 53)
    assert origin.startswith("the 10th address of the service CIDR 10.96.0.0/12, kubeadm's")
    assert kube_dns_address(Settings()) is None


def test_kube_dns_flag_and_profile_key_parse_an_address():
    assert _PARSERS["kube_dns"]("10.96.0.10") == Endpoint("10.96.0.10", 53)
    assert _PARSERS["kube_dns"]("[fd00::a]:5353") == Endpoint("fd00::a", 5353)
    with pytest.raises(ConfigError, match="kube-dns 'kube-dns.local' is not an IP address"):
        _PARSERS["kube_dns"]("kube-dns.local")


def test_kube_dns_profile_key(tmp_path: Path):
    conf = tmp_path / "config.toml"
    conf.write_text('[profiles.lab]\nkube-dns = "10.96.0.10"\n')
    assert load_profile(conf, "lab") == {"kube_dns": Endpoint("10.96.0.10", 53)}


def _pair(proxy_port: int, kube_dns_port: int, timeout: float = 0.4) -> Settings:
    return Settings(
        dns=Endpoint("127.0.0.1", proxy_port),
        kube_dns=Endpoint("127.0.0.1", kube_dns_port),
        timeout=timeout,
    )


def _rows(report):
    return {r.id: r for r in report.results}


def test_proxy_down_while_kube_dns_answers_blames_the_proxy():
    with LoopbackDns(CLUSTER) as kube_dns:
        proxy = _closed_port()
        settings = Settings(
            dns=Endpoint("127.0.0.1", proxy),
            kube_dns=Endpoint("127.0.0.1", kube_dns.port),
            timeout=0.4,
        )
        report = runner.run([DnsResolves(), KubeDnsDirect()], settings, TARGET)
    rows = _rows(report)
    assert rows["dns-resolves"].status is Status.FAIL
    direct = rows["kube-dns-direct"]
    assert direct.status is Status.PASS
    assert direct.summary.startswith(
        f"kube-dns 127.0.0.1:{kube_dns.port} answers directly ({CLUSTER_IP} in "
    )
    assert direct.summary.endswith(
        f"but the DNS proxy 127.0.0.1:{proxy} does not (nothing listening): the DNS proxy is at "
        "fault"
    )
    assert direct.evidence["verdict"] == "proxy-at-fault"
    assert direct.evidence["kube_dns_from"] == "--kube-dns"
    assert "Start the proxy" in direct.remediation
    assert report.first_failure.id == "dns-resolves"


def test_neither_answering_blames_kube_dns_or_the_path_within_one_timeout():
    with (
        LoopbackDns(lambda q: [], tcp=lambda q: []) as proxy,
        LoopbackDns(lambda q: [], tcp=False) as kube_dns,
    ):
        start = time.monotonic()
        report = runner.run(
            [DnsResolves(), KubeDnsDirect()], _pair(proxy.port, kube_dns.port), TARGET
        )
        elapsed = time.monotonic() - start
    rows = _rows(report)
    direct = rows["kube-dns-direct"]
    assert direct.status is Status.FAIL
    assert direct.summary == (
        f"neither kube-dns 127.0.0.1:{kube_dns.port} (no answer over UDP within 0.4 s) nor the "
        f"DNS proxy 127.0.0.1:{proxy.port} (no answer) answers: kube-dns or the path to it is "
        "at fault"
    )
    assert rows["dns-resolves"].caused_by == "kube-dns-direct"
    assert report.first_failure.id == "kube-dns-direct"
    assert elapsed < 0.9


def test_proxy_answering_while_kube_dns_is_silent_points_at_the_path_not_dns():
    with LoopbackDns(CLUSTER) as proxy, LoopbackDns(lambda q: [], tcp=False) as kube_dns:
        report = runner.run(
            [DnsResolves(), KubeDnsDirect()], _pair(proxy.port, kube_dns.port), TARGET
        )
    direct = _rows(report)["kube-dns-direct"]
    assert direct.status is Status.WARN
    assert direct.summary == (
        f"kube-dns 127.0.0.1:{kube_dns.port} does not answer through the route (no answer over "
        f"UDP within 0.4 s) while the DNS proxy 127.0.0.1:{proxy.port} answers: the path from "
        "this client to the cluster is broken, not DNS"
    )
    assert report.first_failure is None


def test_both_answering_the_same_passes():
    with LoopbackDns(CLUSTER) as proxy, LoopbackDns(CLUSTER, tcp=False) as kube_dns:
        report = runner.run(
            [DnsResolves(), KubeDnsDirect()], _pair(proxy.port, kube_dns.port), TARGET
        )
    direct = _rows(report)["kube-dns-direct"]
    assert direct.status is Status.PASS
    assert direct.summary.startswith(
        f"kube-dns 127.0.0.1:{kube_dns.port} answers directly as the DNS proxy "
        f"127.0.0.1:{proxy.port} does: {CLUSTER_IP} in "
    )
    assert direct.evidence["proxy"]["answers"] == [CLUSTER_IP]


def test_proxy_answering_another_address_than_kube_dns_fails():
    stale = _zone({(FQDN, "A"): [f"{FQDN} 5 IN A 10.96.86.99"]})
    with LoopbackDns(stale) as proxy, LoopbackDns(CLUSTER, tcp=False) as kube_dns:
        report = runner.run(
            [DnsResolves(), KubeDnsDirect()], _pair(proxy.port, kube_dns.port), TARGET
        )
    direct = _rows(report)["kube-dns-direct"]
    assert direct.status is Status.FAIL
    assert direct.summary == (
        f"the DNS proxy 127.0.0.1:{proxy.port} answers 10.96.86.99 but kube-dns "
        f"127.0.0.1:{kube_dns.port} answers {CLUSTER_IP}: the proxy's answer is not kube-dns's"
    )


def test_nxdomain_from_both_passes_the_name_back_to_dns_resolves():
    nx = _zone({})
    with LoopbackDns(nx) as proxy, LoopbackDns(nx, tcp=False) as kube_dns:
        report = runner.run(
            [DnsResolves(), KubeDnsDirect()], _pair(proxy.port, kube_dns.port), TARGET
        )
    rows = _rows(report)
    assert rows["kube-dns-direct"].status is Status.PASS
    assert rows["kube-dns-direct"].evidence["verdict"] == "proxy-passes-answer-on"
    assert report.first_failure.id == "dns-resolves"


class _NoRoute(Check):
    id = "route-present"
    hop = Hop.CLIENT
    order = 100

    def run(self, ctx):
        return failed("no route for 10.96.0.0/12")


def test_kube_dns_failure_on_a_broken_route_is_caused_by_route_present():
    with (
        LoopbackDns(lambda q: [], tcp=lambda q: []) as proxy,
        LoopbackDns(lambda q: [], tcp=False) as kube_dns,
    ):
        report = runner.run(
            [_NoRoute(), DnsResolves(), KubeDnsDirect()],
            _pair(proxy.port, kube_dns.port, timeout=0.3),
            TARGET,
        )
    rows = _rows(report)
    assert rows["kube-dns-direct"].caused_by == "route-present"
    assert rows["dns-resolves"].caused_by == "route-present"
    assert report.first_failure.id == "route-present"


def test_kube_dns_direct_skips_without_an_address_or_when_it_is_the_dns_server():
    none = runner.run([KubeDnsDirect()], Settings(dns=Endpoint("127.0.0.1", 9)), TARGET)
    assert none.results[0].status is Status.SKIP
    assert none.results[0].summary == (
        "kube-dns's ClusterIP is not known: give --kube-dns IP or --service-cidr"
    )
    same = runner.run(
        [KubeDnsDirect()],
        Settings(dns=Endpoint("127.0.0.1", 9), kube_dns=Endpoint("127.0.0.1", 9)),
        TARGET,
    )
    assert same.results[0].summary == (
        "the DNS server asked is kube-dns 127.0.0.1:9 itself: dns-resolves asks it directly"
    )
