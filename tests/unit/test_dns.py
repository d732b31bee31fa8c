from __future__ import annotations

import ipaddress
import socket

import dns.message
import dns.rcode

from checks.dns_resolves import classify
from k8sreach.dnsprobe import query
from k8sreach.result import Status
from k8sreach.target import parse_target
from tests.dnsfake import LoopbackDns, reply

FQDN = "mysql-read.default.svc.cluster.local."
SVC = (ipaddress.ip_network("10.96.0.0/12"),)
POD = (ipaddress.ip_network("10.244.0.0/16"),)
TARGET = parse_target("mysql-read.default")


def _ask(answer, timeout=0.5):
    with LoopbackDns(answer) as server:
        return query("127.0.0.1", server.port, FQDN, "A", timeout)


def test_cluster_ip_answer_passes_and_publishes_the_address():
    out = _ask(lambda q: [reply(q, records=[f"{FQDN} 5 IN A 10.96.86.83"])])
    finding = classify(out, TARGET, SVC, POD)
    assert finding.status is Status.PASS
    assert finding.facts["address"] == "10.96.86.83"
    assert finding.evidence["rcode"] == "NOERROR"
    assert finding.evidence["answers"] == ["10.96.86.83"]
    assert "AA" in finding.evidence["flags"]
    assert "(ClusterIP)" in finding.summary


def test_headless_answer_with_pod_addresses_passes():
    out = _ask(
        lambda q: [reply(q, records=[f"{FQDN} 5 IN A 10.244.1.10", f"{FQDN} 5 IN A 10.244.2.11"])]
    )
    finding = classify(out, TARGET, SVC, POD)
    assert finding.status is Status.PASS
    assert "pod addresses (headless)" in finding.summary
    assert finding.facts["addresses"] == ["10.244.1.10", "10.244.2.11"]


def test_answer_outside_cluster_ranges_fails_showing_the_address():
    out = _ask(lambda q: [reply(q, records=[f"{FQDN} 5 IN A 203.0.113.7"])])
    finding = classify(out, TARGET, SVC, POD)
    assert finding.status is Status.FAIL
    assert (
        "203.0.113.7, outside the service and pod CIDRs (10.96.0.0/12, 10.244.0.0/16)"
        in finding.summary
    )


def test_nxdomain_authoritative_is_its_own_failure():
    out = _ask(lambda q: [reply(q, rcode=dns.rcode.NXDOMAIN)])
    finding = classify(out, TARGET, SVC, POD)
    assert finding.status is Status.FAIL
    assert finding.summary.startswith("NXDOMAIN (authoritative):")
    assert "kubectl get service mysql-read -n default" in finding.remediation


def test_servfail_and_refused_are_told_apart():
    servfail = classify(
        _ask(lambda q: [reply(q, rcode=dns.rcode.SERVFAIL, aa=False)]), TARGET, SVC, POD
    )
    refused = classify(
        _ask(lambda q: [reply(q, rcode=dns.rcode.REFUSED, aa=False)]), TARGET, SVC, POD
    )
    assert servfail.summary.startswith("SERVFAIL:")
    assert refused.summary.startswith("REFUSED:")
    assert servfail.evidence["rcode"] == "SERVFAIL"
    assert refused.evidence["rcode"] == "REFUSED"


def test_nodata_answer_fails_as_no_record():
    finding = classify(_ask(lambda q: [reply(q)]), TARGET, SVC, POD)
    assert finding.status is Status.FAIL
    assert "(NODATA)" in finding.summary


def test_silent_server_is_a_timeout_bounded_by_the_probe_timeout():
    out = _ask(lambda q: [], timeout=0.3)
    assert out.kind == "timeout"
    finding = classify(out, TARGET, SVC, POD)
    assert finding.summary == f"no answer from 127.0.0.1:{out.port} within 0.3 s"


def test_closed_port_is_reported_as_nothing_listening():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    out = query("127.0.0.1", port, FQDN, "A", 1.0)
    assert out.kind == "port-unreachable"
    finding = classify(out, TARGET, SVC, POD)
    assert finding.summary == f"nothing listens on 127.0.0.1:{port} (ICMP port unreachable)"


def test_garbage_and_mismatched_replies_are_ignored_until_the_real_one():
    def answer(q):
        wrong_id = bytearray(reply(q, records=[f"{FQDN} 5 IN A 6.6.6.6"]))
        wrong_id[0] ^= 0xFF
        other = dns.message.make_query("evil.example.", "A")
        other.id = dns.message.from_wire(q).id
        return [
            b"\x00garbage",
            bytes(wrong_id),
            dns.message.make_response(other).to_wire(),
            reply(q, records=[f"{FQDN} 5 IN A 10.96.86.83"]),
        ]

    out = _ask(answer)
    assert out.addresses == ("10.96.86.83",)
    assert out.ignored_replies == 3


def test_only_garbage_replies_end_as_a_timeout_with_the_count():
    out = _ask(lambda q: [b"junk"] * 5, timeout=0.3)
    assert out.kind == "timeout"
    assert out.ignored_replies == 5


def test_records_for_other_names_are_not_taken_as_the_answer():
    out = _ask(lambda q: [reply(q, records=["evil.example. 5 IN A 6.6.6.6"])])
    assert out.addresses == ()
    assert "1 answer record set(s) for other names were ignored" in out.notes
    assert classify(out, TARGET, SVC, POD).summary.endswith("(NODATA)")


def test_cname_chain_is_followed_to_the_address():
    out = _ask(
        lambda q: [
            reply(
                q,
                records=[
                    f"{FQDN} 5 IN CNAME db.example.",
                    "db.example. 5 IN A 10.96.5.5",
                ],
            )
        ]
    )
    assert out.cnames == ("db.example.",)
    assert out.addresses == ("10.96.5.5",)


def test_cname_loop_stops_after_a_bounded_number_of_hops():
    out = _ask(
        lambda q: [
            reply(
                q,
                records=[
                    f"{FQDN} 5 IN CNAME a.example.",
                    "a.example. 5 IN CNAME b.example.",
                    "b.example. 5 IN CNAME a.example.",
                ],
            )
        ]
    )
    assert out.addresses == ()
    assert any("CNAME chain longer than" in n for n in out.notes)


def test_without_cluster_ranges_the_answer_passes_but_says_it_was_not_compared():
    out = _ask(lambda q: [reply(q, records=[f"{FQDN} 5 IN A 203.0.113.7"])])
    finding = classify(out, TARGET, (), ())
    assert finding.status is Status.PASS
    assert "not compared with the cluster ranges" in finding.summary
