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


def test_cname_loop_stops_where_the_chain_comes_back():
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
    assert out.cnames == ("a.example.", "b.example.")
    assert out.cname_loop is True
    assert out.notes == ("CNAME loop: b.example. points back to a.example.; stopped following it",)


def test_without_cluster_ranges_the_answer_passes_but_says_it_was_not_compared():
    out = _ask(lambda q: [reply(q, records=[f"{FQDN} 5 IN A 203.0.113.7"])])
    finding = classify(out, TARGET, (), ())
    assert finding.status is Status.PASS
    assert "not compared with the cluster ranges" in finding.summary


def test_only_unmatched_replies_are_a_no_valid_answer_failure_not_silence():
    def answer(q):
        wrong_id = bytearray(reply(q, records=[f"{FQDN} 5 IN A 6.6.6.6"]))
        wrong_id[0] ^= 0xFF
        return [b"junk", bytes(wrong_id)]

    out = _ask(answer, timeout=0.3)
    finding = classify(out, TARGET, SVC, POD)
    assert finding.status is Status.FAIL
    assert finding.summary == (
        f"no valid answer from 127.0.0.1:{out.port} within 0.3 s: 2 replies were ignored (not "
        "DNS, or not an answer to this question)"
    )
    assert finding.evidence["ignored_replies"] == 2
    assert "the DNS server misbehaves, or something else answers in its place" in (
        finding.remediation
    )
    assert "did not answer" not in finding.remediation


def test_one_unmatched_reply_is_counted_in_the_singular():
    out = _ask(lambda q: [b"junk"], timeout=0.3)
    assert classify(out, TARGET, SVC, POD).summary.endswith(
        "within 0.3 s: 1 reply was ignored (not DNS, or not an answer to this question)"
    )


def test_cname_loop_is_its_own_failure_not_nodata():
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
    finding = classify(out, TARGET, SVC, POD)
    assert finding.status is Status.FAIL
    assert finding.summary == f"the CNAME chain for {FQDN} does not end (a loop, or longer than 8)"
    assert finding.evidence["cnames"] == ["a.example.", "b.example."]
    assert "headless" not in finding.remediation


def test_cname_to_itself_is_a_chain_that_does_not_end():
    out = _ask(lambda q: [reply(q, records=[f"{FQDN} 5 IN CNAME {FQDN}"])])
    assert (out.cname_loop, out.cnames) == (True, ())
    assert out.notes == (f"CNAME loop: {FQDN} points back to {FQDN}; stopped following it",)
    assert classify(out, TARGET, SVC, POD).summary == (
        f"the CNAME chain for {FQDN} does not end (a loop, or longer than 8)"
    )


def test_cname_chain_longer_than_eight_does_not_end():
    names = [f"c{i}.example." for i in range(10)]
    records = [f"{FQDN} 5 IN CNAME {names[0]}"]
    records += [f"{a} 5 IN CNAME {b}" for a, b in zip(names, names[1:], strict=False)]
    records.append(f"{names[-1]} 5 IN A 10.96.5.5")
    out = _ask(lambda q: [reply(q, records=records)])
    assert out.addresses == ()
    assert out.cnames == tuple(names[:8])
    assert "CNAME chain longer than 8; stopped following it" in out.notes
    assert classify(out, TARGET, SVC, POD).summary.startswith("the CNAME chain for ")


def test_cname_chain_of_eight_reaches_its_address():
    names = [f"c{i}.example." for i in range(8)]
    records = [f"{FQDN} 5 IN CNAME {names[0]}"]
    records += [f"{a} 5 IN CNAME {b}" for a, b in zip(names, names[1:], strict=False)]
    records.append(f"{names[-1]} 5 IN A 10.96.5.5")
    out = _ask(lambda q: [reply(q, records=records)])
    assert (out.addresses, out.cname_loop) == (("10.96.5.5",), False)


def test_aaaa_record_in_reply_to_an_a_query_is_not_the_answer():
    out = _ask(lambda q: [reply(q, records=[f"{FQDN} 5 IN AAAA fd00:96::10"])])
    assert out.addresses == ()
    assert out.notes == ("1 AAAA record(s) in the answer to an A query were ignored",)
    assert classify(out, TARGET, SVC, POD).summary.endswith("returned no A record (NODATA)")


def test_only_the_asked_type_is_taken_from_a_mixed_answer():
    records = [f"{FQDN} 5 IN AAAA fd00:96::10", f"{FQDN} 5 IN A 10.96.86.83"]
    out = _ask(lambda q: [reply(q, records=records)])
    assert out.addresses == ("10.96.86.83",)


def test_waits_in_summaries_are_rounded_to_one_decimal():
    from checks._dns import failure_text
    from k8sreach.dnsprobe import DnsOutcome

    out = DnsOutcome("127.0.0.1", 53, FQDN, "A", "udp", "timeout", latency_ms=1999.2)
    assert classify(out, TARGET, SVC, POD).summary == "no answer from 127.0.0.1:53 within 2 s"
    assert failure_text(out) == "no answer over UDP within 2 s"
    slow = DnsOutcome("127.0.0.1", 53, FQDN, "A", "udp", "timeout", latency_ms=1234.5)
    assert failure_text(slow) == "no answer over UDP within 1.2 s"


def test_cname_loop_of_an_external_name_service_keeps_the_loop_failure():
    from checks.dns_resolves import ApiView, compare_with_api

    records = [
        f"{FQDN} 5 IN CNAME a.example.",
        "a.example. 5 IN CNAME b.example.",
        "b.example. 5 IN CNAME a.example.",
    ]
    out = _ask(lambda q: [reply(q, records=records)])
    finding = classify(out, TARGET, SVC, POD)
    view = ApiView("external-name", external_name="a.example.")
    judged = compare_with_api(finding, out, TARGET, view)
    assert judged.summary == f"the CNAME chain for {FQDN} does not end (a loop, or longer than 8)"
    assert judged.evidence["api_external_name"] == "a.example."
