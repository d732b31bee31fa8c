"""`ipvsadm -Ln` parsing and virtual-service lookup."""

from __future__ import annotations

import pytest

from k8sreach.parsers import ParseError
from k8sreach.parsers.ipvs import ipvs_service, parse_ipvsadm


@pytest.fixture
def table(fixture_text):
    return parse_ipvsadm(fixture_text("ipvsadm-Ln-kube-proxy.txt"))


def test_version_and_services_in_order(table):
    assert table.version == "1.2.1"
    assert [(s.protocol, s.address, s.port, s.scheduler) for s in table.services] == [
        ("TCP", "10.96.0.1", 443, "rr"),
        ("TCP", "10.96.0.10", 53, "rr"),
        ("TCP", "10.96.12.34", 3306, "rr"),
        ("TCP", "10.96.86.83", 3306, "rr"),
        ("UDP", "10.96.0.10", 53, "rr"),
        ("TCP", "fd00:10:96::a", 53, "rr"),
        ("FWM", "", None, "sh"),
    ]


def test_real_servers_with_forward_weight_and_connections(table):
    service = ipvs_service(table, "10.96.86.83", 3306, "tcp")

    assert service.persistent == 10800
    assert service.flags == ("persistent", "10800")
    assert [
        (r.endpoint, r.forward, r.weight, r.active, r.inactive) for r in service.real_servers
    ] == [
        ("10.244.1.10:3306", "Masq", 1, 0, 2),
        ("10.244.2.11:3306", "Masq", 0, 0, 5),
    ]


def test_service_without_real_servers(table):
    service = ipvs_service(table, "10.96.12.34", 3306)

    assert service.real_servers == ()


def test_lookup_by_protocol_and_missing_service(table):
    assert ipvs_service(table, "10.96.0.10", 53, "udp").protocol == "UDP"
    assert ipvs_service(table, "10.96.0.10", 53, "TCP").protocol == "TCP"
    assert ipvs_service(table, "10.96.0.99", 53) is None


def test_ipv6_service_and_fwmark(table):
    service = ipvs_service(table, "fd00:10:96::a", 53)

    assert service.real_servers[0].endpoint == "[fd00:10:244::5]:53"
    assert service.real_servers[0].address == "fd00:10:244::5"
    fwm = table.services[-1]
    assert (fwm.fwmark, fwm.real_servers[0].forward) == (100, "Route")


def test_header_only_is_empty():
    text = (
        "IP Virtual Server version 1.2.1 (size=4096)\n"
        "Prot LocalAddress:Port Scheduler Flags\n"
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
    )

    assert parse_ipvsadm(text).services == ()


def test_no_ipvs_in_kernel_raises_with_ipvsadm_message(fixture_text):
    with pytest.raises(ParseError) as error:
        parse_ipvsadm(fixture_text("ipvsadm-Ln-no-ipvs.txt"))

    assert error.value.line == "Can't initialize ipvs: Protocol not available"


def test_empty_output_raises():
    with pytest.raises(ParseError, match="empty"):
        parse_ipvsadm("")
