"""End-to-end: DNS in depth on the lab: UDP and TCP, the client's search list, kube-dns asked
directly through the route, SRV for a named port."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.helpers import doctor, fault

pytestmark = pytest.mark.lab


def _fqdn(lab) -> str:
    return f"{lab.service_fqdn}."


def test_healthy_lab_resolves_over_both_transports_the_short_name_and_kube_dns(lab):
    run = doctor(lab, ssh=False)
    assert run.code == 0, run.stdout + run.stderr
    dns = run.check("dns-resolves")
    assert dns["status"] == "pass"
    assert (
        dns["evidence"]["udp"]["answers"] == dns["evidence"]["tcp"]["answers"] == [lab.service_ip]
    )
    assert "RA" in dns["evidence"]["tcp"]["flags"]
    search = run.check("dns-search")
    assert search["status"] == "pass"
    assert search["summary"] == (
        f"{lab.service}.{lab.namespace} -> {lab.service_ip} as {_fqdn(lab)} (search domain "
        f"svc.{lab.cluster_domain}, try 3 of 4), as the FQDN"
    )
    assert search["evidence"]["search"] == [
        f"default.svc.{lab.cluster_domain}",
        f"svc.{lab.cluster_domain}",
        lab.cluster_domain,
    ]
    direct = run.check("kube-dns-direct")
    assert direct["status"] == "pass"
    assert direct["summary"].startswith(
        f"kube-dns {lab.kube_dns_ip}:53 answers directly as the DNS proxy "
        f"{lab.dns_proxy_ip}:53 does: {lab.service_ip} in "
    )
    assert direct["evidence"]["kube_dns_from"].startswith(
        f"the 10th address of the service CIDR {lab.service_cidr}, kubeadm's convention"
    )


def test_dns_proxy_down_while_kube_dns_answers_directly_blames_the_proxy(lab):
    with fault(lab, "dns-proxy-stopped"):
        run = doctor(lab, "--timeout", "1", ssh=False)
    assert run.code == 1
    assert run.doc["first_failure"] == "dns-resolves"
    dns = run.check("dns-resolves")
    assert dns["summary"] == f"nothing listens on {lab.dns_proxy_ip}:53 (ICMP port unreachable)"
    assert dns["evidence"]["tcp"]["outcome"] == "port-unreachable"
    direct = run.check("kube-dns-direct")
    assert direct["status"] == "pass"
    assert direct["summary"].startswith(
        f"kube-dns {lab.kube_dns_ip}:53 answers directly ({lab.service_ip} in "
    )
    assert direct["summary"].endswith(
        f"but the DNS proxy {lab.dns_proxy_ip}:53 does not (nothing listening): the DNS proxy "
        "is at fault"
    )
    assert direct["evidence"]["verdict"] == "proxy-at-fault"
    search = run.check("dns-search")
    assert (search["status"], search["caused_by"]) == ("fail", "dns-resolves")


def test_broken_proxy_upstream_times_out_while_kube_dns_answers_within_one_timeout(lab):
    with fault(lab, "dns-upstream-broken"):
        run = doctor(lab, "--timeout", "1", ssh=False)
    assert run.doc["first_failure"] == "dns-resolves"
    dns = run.check("dns-resolves")
    assert dns["summary"] == f"no answer from {lab.dns_proxy_ip}:53 within 1 s"
    assert dns["evidence"]["tcp"]["outcome"] in ("timeout", "error")
    direct = run.check("kube-dns-direct")
    assert direct["status"] == "pass"
    assert direct["summary"].endswith(
        f"but the DNS proxy {lab.dns_proxy_ip}:53 does not (no answer): the DNS proxy is at fault"
    )
    assert (
        f"On the proxy host {lab.dns_proxy_ip}: `dig @{lab.kube_dns_ip}" in (direct["remediation"])
    )
    assert run.doc["duration_ms"] < 2500


def test_short_name_failing_while_the_fqdn_resolves_is_a_search_domain_problem(lab):
    conf = Path(lab.client_resolv_conf)
    original = conf.read_text()
    try:
        conf.write_text(
            original.replace(
                next(x for x in original.splitlines() if x.startswith("search ")),
                "search corp.example.invalid",
            )
        )
        run = doctor(lab, ssh=False)
    finally:
        conf.write_text(original)
    assert run.code == 0, run.stdout + run.stderr
    assert run.doc["first_failure"] is None
    assert run.check("dns-resolves")["status"] == "pass"
    search = run.check("dns-search")
    assert search["status"] == "warn"
    assert search["summary"].startswith(
        f"{lab.service}.{lab.namespace} does not resolve with this client's search list "
        "(corp.example.invalid; ndots 1) while the FQDN does: a search-domain problem on this "
        "client, not a DNS outage"
    )
    assert search["evidence"]["answered_by"] is None
    assert (
        f"put `search svc.{lab.cluster_domain} corp.example.invalid` in /etc/resolv.conf"
        in (search["remediation"])
    )


def test_named_port_is_resolved_through_its_srv_record(lab):
    run = doctor(lab, ssh=False, target=f"{lab.service}.{lab.namespace}:mysql", port=False)
    assert run.code == 0, run.stdout + run.stderr
    dns = run.check("dns-resolves")
    assert dns["summary"].endswith(f"; port {lab.service_port_name} is {lab.service_port} (SRV)")
    assert dns["evidence"]["srv"]["records"] == [f"0 0 {lab.service_port} {_fqdn(lab)}"]
    tcp = run.check("tcp-connect")
    assert (tcp["status"], tcp["evidence"]["port"]) == ("pass", lab.service_port)
    assert run.doc["reachable"] is True
