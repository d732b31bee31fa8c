from __future__ import annotations

import ipaddress
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from k8sreach import routes
from k8sreach.routes import (
    Route,
    RouteReadError,
    covering,
    inside,
    lookup,
    parse_ip_json_route,
    parse_macos_netstat,
    parse_proc_ipv6_route,
    parse_proc_net_route,
    parse_windows_route_print,
    read_linux_routes,
    read_local_routes,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "routes"
net = ipaddress.ip_network
ip = ipaddress.ip_address


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def linux_v4() -> list[Route]:
    return parse_proc_net_route(fixture("linux_proc_net_route.txt"))


@pytest.fixture(scope="module")
def linux_v6() -> list[Route]:
    return parse_proc_ipv6_route(fixture("linux_proc_net_ipv6_route.txt"))


@pytest.fixture(scope="module")
def linux_json() -> list[Route]:
    return parse_ip_json_route(fixture("linux_ip_j_route_table_all.json"))


@pytest.fixture(scope="module")
def macos() -> list[Route]:
    return parse_macos_netstat(fixture("macos_netstat_rn.txt"))


@pytest.fixture(scope="module")
def windows() -> list[Route]:
    return parse_windows_route_print(fixture("windows_route_print.txt"))


def by_destination(table: list[Route], destination: str) -> list[Route]:
    return [r for r in table if r.destination == net(destination)]


# --- Route ----------------------------------------------------------------------------------


def test_only_a_zero_length_prefix_is_the_default_route(linux_v4, linux_v6):
    assert [str(r.destination) for r in linux_v4 + linux_v6 if r.is_default] == [
        "0.0.0.0/0",
        "0.0.0.0/0",
        "::/0",
    ]


# --- /proc/net/route ------------------------------------------------------------------------


def test_proc_net_route_decodes_the_little_endian_hex_fields(linux_v4):
    assert linux_v4[2] == Route(
        destination=net("10.96.0.0/12"),
        gateway=ip("192.168.77.1"),
        interface="eth0",
        metric=0,
        source="linux-proc",
        table="main",
        flags="UG",
        raw="eth0\t0000600A\t014DA8C0\t0003\t0\t0\t0\t0000F0FF\t0\t0\t0",
    )


def test_proc_net_route_reads_every_main_table_route(linux_v4):
    assert [
        (str(r.destination), str(r.gateway), r.interface, r.metric, r.flags) for r in linux_v4
    ] == [
        ("0.0.0.0/0", "192.168.77.1", "eth0", 100, "UG"),
        ("0.0.0.0/0", "10.244.0.254", "wg0", 600, "UG"),
        ("10.96.0.0/12", "192.168.77.1", "eth0", 0, "UG"),
        ("10.96.0.10/32", "10.244.0.254", "wg0", 50, "UGH"),
        ("10.244.0.0/24", "None", "wg0", 0, "U"),
        ("10.244.1.0/24", "10.244.0.254", "wg0", 0, "UG"),
        ("10.244.9.0/24", "None", None, 0, "U"),
        ("172.20.0.0/16", "None", "wg0", 10, "U"),
        ("192.168.77.0/24", "None", "eth0", 0, "U"),
    ]


def test_proc_net_route_leaves_out_the_policy_routing_table(linux_v4):
    # The capture also has 10.96.0.0/12 via 10.244.0.254 in table 100; the kernel hides it here.
    assert [str(r.gateway) for r in by_destination(linux_v4, "10.96.0.0/12")] == ["192.168.77.1"]


def test_proc_net_route_blackhole_has_neither_interface_nor_gateway(linux_v4):
    (blackhole,) = by_destination(linux_v4, "10.244.9.0/24")
    assert (blackhole.interface, blackhole.gateway) == (None, None)


def test_proc_net_route_on_a_big_endian_machine_reads_network_order():
    text = (
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
        "eth0\t0A600000\tC0A84D01\t0003\t0\t0\t0\tFFF00000\t0\t0\t0\n"
    )
    (route,) = parse_proc_net_route(text, byteorder="big")
    assert (route.destination, route.gateway) == (net("10.96.0.0/12"), ip("192.168.77.1"))


def test_proc_net_route_skips_an_unreadable_line_and_keeps_the_rest(caplog):
    text = (
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
        "eth0\tZZZZ\n"
        "eth0\t00000000\t014DA8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n"
    )
    with caplog.at_level(logging.WARNING, logger="k8sreach.routes"):
        table = parse_proc_net_route(text)
    assert [str(r.destination) for r in table] == ["0.0.0.0/0"]
    assert "skipping unreadable /proc/net/route line 'eth0\\tZZZZ'" in caplog.text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "default via 192.168.77.1 dev eth0\n",
            "not /proc/net/route text: expected a header starting 'Iface Destination Gateway', "
            "got 'default via 192.168.77.1 dev eth0'",
        ),
        (
            "",
            "not /proc/net/route text: expected a header starting 'Iface Destination Gateway', "
            "got ''",
        ),
    ],
)
def test_proc_net_route_rejects_text_that_is_not_that_file(text, message):
    with pytest.raises(RouteReadError) as caught:
        parse_proc_net_route(text)
    assert str(caught.value) == message


# --- /proc/net/ipv6_route -------------------------------------------------------------------


def test_proc_ipv6_route_reads_a_gateway_route(linux_v6):
    (route,) = by_destination(linux_v6, "fd00:96::/108")
    assert route == Route(
        destination=net("fd00:96::/108"),
        gateway=ip("fd00:77::1"),
        interface="eth0",
        metric=256,
        source="linux-proc",
        table=None,
        flags="UG",
        raw=(
            "fd000096000000000000000000000000 6c 00000000000000000000000000000000 00 "
            "fd000077000000000000000000000001 00000100 00000001 00000000 00000003     eth0"
        ),
    )


def test_proc_ipv6_route_marks_local_routes_with_the_local_table(linux_v6):
    assert [(str(r.destination), r.interface, r.flags) for r in linux_v6 if r.table] == [
        ("::1/128", "lo", "Un"),
        ("fd00:77::2/128", "eth0", "Un"),
        ("fd00:244::1/128", "wg0", "Un"),
    ]


def test_proc_ipv6_route_drops_the_kernels_null_entries(linux_v6):
    # The capture has two "::/0 ... ffffffff 00200200 lo" placeholders; only the real default
    # route via fd00:77::1 remains.
    assert [(str(r.gateway), r.interface) for r in linux_v6 if r.is_default] == [
        ("fd00:77::1", "eth0")
    ]
    assert len(linux_v6) == 17


def test_proc_ipv6_route_cannot_tell_a_policy_table_route_from_a_main_one(linux_v6):
    # fd00:96::10/128 was added to table 100, yet the file lists it like any other route.
    (route,) = by_destination(linux_v6, "fd00:96::10/128")
    assert (route.table, str(route.gateway), route.interface) == (None, "fd00:244::254", "wg0")


def test_proc_ipv6_route_of_empty_text_has_no_routes():
    assert parse_proc_ipv6_route("") == []


def test_proc_ipv6_route_rejects_text_that_is_not_that_file():
    with pytest.raises(RouteReadError) as caught:
        parse_proc_ipv6_route("Iface\tDestination\tGateway\n")
    assert str(caught.value) == (
        "not /proc/net/ipv6_route text: no line has the 10 hex fields 'destination prefix "
        "source prefix next-hop metric refs use flags device', first line "
        "'Iface\\tDestination\\tGateway'"
    )


# --- read_linux_routes ----------------------------------------------------------------------


def _proc_tree(root: Path, *, ipv6: bool = True) -> Path:
    (root / "net").mkdir(parents=True)
    shutil.copy(FIXTURES / "linux_proc_net_route.txt", root / "net" / "route")
    if ipv6:
        shutil.copy(FIXTURES / "linux_proc_net_ipv6_route.txt", root / "net" / "ipv6_route")
    return root


def test_read_linux_routes_reads_both_families_under_proc_root(tmp_path):
    table = read_linux_routes(_proc_tree(tmp_path))
    assert (len(table), {r.version for r in (x.destination for x in table)}) == (26, {4, 6})


def test_read_linux_routes_without_ipv6_returns_the_ipv4_routes(tmp_path):
    table = read_linux_routes(_proc_tree(tmp_path, ipv6=False))
    assert [str(r.destination) for r in table][:3] == ["0.0.0.0/0", "0.0.0.0/0", "10.96.0.0/12"]
    assert len(table) == 9


def test_read_linux_routes_without_proc_net_route_says_which_file(tmp_path):
    with pytest.raises(RouteReadError) as caught:
        read_linux_routes(tmp_path)
    assert str(caught.value) == f"cannot read {tmp_path}/net/route: No such file or directory"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads this machine's /proc")
def test_read_linux_routes_reads_this_machine():
    assert {r.source for r in read_linux_routes()} <= {"linux-proc"}


# --- ip -j route ----------------------------------------------------------------------------


def test_ip_json_route_shows_table_and_protocol(linux_json):
    assert linux_json[0] == Route(
        destination=net("10.96.0.0/12"),
        gateway=ip("10.244.0.254"),
        interface="wg0",
        metric=0,
        source="linux-netlink",
        table="100",
        flags=None,
        raw='{"dst":"10.96.0.0/12","gateway":"10.244.0.254","dev":"wg0","table":"100",'
        '"protocol":"bird","flags":[]}',
        protocol="bird",
    )


def test_ip_json_route_names_the_route_type_in_flags(linux_json):
    (blackhole,) = by_destination(linux_json, "10.244.9.0/24")
    assert (blackhole.flags, blackhole.interface, blackhole.protocol) == ("blackhole", None, "bird")
    assert [r.flags for r in by_destination(linux_json, "127.0.0.0/8")] == ["local"]


def test_ip_json_route_gives_default_routes_their_family(linux_json):
    assert [(str(r.destination), str(r.gateway), r.metric) for r in linux_json if r.is_default] == [
        ("0.0.0.0/0", "192.168.77.1", 100),
        ("0.0.0.0/0", "10.244.0.254", 600),
        ("::/0", "fd00:77::1", 1024),
    ]


def test_ip_json_route_default_without_gateway_takes_the_family_given():
    text = '[{"dst":"default","dev":"wg0","scope":"link","flags":[]}]'
    assert parse_ip_json_route(text)[0].destination == net("0.0.0.0/0")
    assert parse_ip_json_route(text, family=6)[0].destination == net("::/0")


def test_ip_json_route_splits_a_multipath_route_into_one_route_per_next_hop():
    text = (
        '[{"dst":"10.96.0.0/12","protocol":"bird","metric":20,"flags":[],"nexthops":['
        '{"gateway":"192.168.77.1","dev":"eth0","weight":1,"flags":[]},'
        '{"gateway":"10.244.0.254","dev":"wg0","weight":1,"flags":["onlink"]}]}]'
    )
    assert [
        (str(r.gateway), r.interface, r.flags, r.metric) for r in parse_ip_json_route(text)
    ] == [
        ("192.168.77.1", "eth0", None, 20),
        ("10.244.0.254", "wg0", "onlink", 20),
    ]


def test_ip_json_route_of_empty_output_has_no_routes():
    assert parse_ip_json_route("") == []
    assert parse_ip_json_route("[]\n") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "default via 192.168.77.1 dev eth0",
            "not `ip -j route` output: invalid JSON (Expecting value at line 1 column 1)",
        ),
        (
            '{"dst":"default"}',
            "not `ip -j route` output: expected a JSON list of routes, got dict",
        ),
    ],
)
def test_ip_json_route_rejects_text_that_is_not_its_output(text, message):
    with pytest.raises(RouteReadError) as caught:
        parse_ip_json_route(text)
    assert str(caught.value) == message


# --- macOS netstat -rn ----------------------------------------------------------------------


def test_macos_netstat_reads_an_abbreviated_service_route(macos):
    (route,) = by_destination(macos, "10.96.0.0/12")
    assert route == Route(
        destination=net("10.96.0.0/12"),
        gateway=ip("192.168.77.1"),
        interface="en0",
        metric=None,
        source="macos-netstat",
        flags="UGSc",
        raw="10.96/12           192.168.77.1       UGSc                  en0",
    )


@pytest.mark.parametrize(
    ("destination", "network"),
    [
        ("10.96/12", "10.96.0.0/12"),
        ("10.244.1", "10.244.1.0/24"),
        ("127", "127.0.0.0/8"),
        ("169.254", "169.254.0.0/16"),
        ("192.168.77.1/32", "192.168.77.1/32"),
        ("192.168.77.1", "192.168.77.1/32"),
        ("224.0.0/4", "224.0.0.0/4"),
        ("0/1", "0.0.0.0/1"),
        ("128.0/1", "128.0.0.0/1"),
        ("10/16", "10.0.0.0/16"),
        ("default", "0.0.0.0/0"),
    ],
)
def test_macos_netstat_derives_the_netmask_from_the_abbreviated_destination(destination, network):
    text = (
        "Internet:\nDestination        Gateway            Flags               Netif Expire\n"
        f"{destination}   192.168.77.1   UGSc   en0\n"
    )
    assert parse_macos_netstat(text)[0].destination == net(network)


def test_macos_netstat_has_no_next_hop_for_link_mac_and_interface_gateways(macos):
    rows = [(str(r.destination), r.gateway, r.interface) for r in macos]
    assert ("192.168.77.0/24", None, "en0") in rows  # link#11
    assert ("192.168.77.1/32", None, "en0") in rows  # a4:2b:b0:1c:2d:3e, Expire 1187
    assert ("127.0.0.0/8", None, "lo0") in rows  # 127.0.0.1 without the G flag
    assert ("10.66.0.1/32", None, "utun4") in rows  # the tunnel's own address


def test_macos_netstat_strips_the_zone_from_ipv6_destinations_and_gateways(macos):
    (route,) = [
        r for r in macos if r.is_default and r.interface == "en0" and r.destination.version == 6
    ]
    assert (route.destination, route.gateway, route.flags) == (
        net("::/0"),
        ip("fe80::a62b:b0ff:fe1c:2d3e"),
        "UGcg",
    )
    assert [r.interface for r in by_destination(macos, "fe80::/64")] == ["lo0", "en0", "utun0"]


def test_macos_netstat_reads_both_sections(macos):
    assert [r.destination.version for r in macos].count(4) == 16
    assert [r.destination.version for r in macos].count(6) == 16


def test_macos_netstat_with_refs_and_use_columns_takes_netif_from_the_header():
    table = parse_macos_netstat(fixture("macos_netstat_rn_refs_use.txt"))
    assert [(str(r.destination), str(r.gateway), r.interface) for r in table[:3]] == [
        ("0.0.0.0/0", "192.168.77.1", "en1"),
        ("0.0.0.0/1", "10.8.0.1", "utun2"),
        ("10.0.0.0/16", "10.8.0.1", "utun2"),
    ]
    assert [r.interface for r in table if r.destination.version == 6] == ["lo0", "lo0"]


def test_macos_netstat_rejects_text_without_its_header():
    with pytest.raises(RouteReadError) as caught:
        parse_macos_netstat("Kernel IP routing table\n0.0.0.0 192.168.77.1 0.0.0.0 UG 0 0 0 eth0\n")
    assert str(caught.value) == (
        "not `netstat -rn` output: no 'Destination Gateway Flags ... Netif' header found"
    )


# --- Windows route print --------------------------------------------------------------------


def test_route_print_lists_a_persistent_route_as_active_and_persistent(windows):
    assert by_destination(windows, "10.96.0.0/12") == [
        Route(
            destination=net("10.96.0.0/12"),
            gateway=ip("192.168.77.1"),
            interface="192.168.77.20",
            metric=36,
            source="windows-route-print",
            raw="10.96.0.0      255.240.0.0     192.168.77.1    192.168.77.20     36",
        ),
        Route(
            destination=net("10.96.0.0/12"),
            gateway=ip("192.168.77.1"),
            interface=None,
            metric=None,
            source="windows-route-print",
            persistent=True,
            raw="10.96.0.0      255.240.0.0     192.168.77.1  Default",
        ),
    ]


def test_route_print_on_link_routes_have_no_gateway(windows):
    (route,) = by_destination(windows, "10.96.0.10/32")
    assert (route.gateway, route.interface, route.metric) == (None, "10.66.0.2", 5)


def test_route_print_reads_a_persistent_route_with_a_numeric_metric(windows):
    (route,) = by_destination(windows, "10.200.0.0/16")
    assert (route.gateway, route.metric, route.persistent) == (ip("172.31.0.1"), 1, True)


def test_route_print_joins_an_ipv6_row_whose_gateway_wrapped(windows):
    (route,) = by_destination(windows, "fe80::4c1d:9e2f:7a3b:1c55/128")
    assert route == Route(
        destination=net("fe80::4c1d:9e2f:7a3b:1c55/128"),
        gateway=None,
        interface="12",
        metric=291,
        source="windows-route-print",
        raw="12    291 fe80::4c1d:9e2f:7a3b:1c55/128 On-link",
    )


def test_route_print_reads_the_ipv6_default_gateway(windows):
    (route,) = by_destination(windows, "::/0")
    assert (route.gateway, route.interface, route.metric) == (
        ip("fe80::a62b:b0ff:fe1c:2d3e"),
        "12",
        291,
    )


def test_route_print_counts_every_row_once(windows):
    v4 = [r for r in windows if r.destination.version == 4]
    assert (len(v4), sum(r.persistent for r in v4)) == (25, 2)
    assert (len(windows) - len(v4), sum(r.persistent for r in windows)) == (12, 2)


def test_route_print_in_german_reads_the_same_rows():
    table = parse_windows_route_print(fixture("windows_route_print_de.txt"))
    assert [(str(r.destination), str(r.gateway), r.metric, r.persistent) for r in table] == [
        ("0.0.0.0/0", "192.168.77.1", 35, False),
        ("10.96.0.0/12", "192.168.77.1", 36, False),
        ("127.0.0.0/8", "None", 331, False),
        ("192.168.77.0/24", "None", 291, False),
        ("10.96.0.0/12", "192.168.77.1", None, True),  # "Standard"
        ("::1/128", "None", 331, False),  # "Auf Verbindung"
        ("fe80::4c1d:9e2f:7a3b:1c55/128", "None", 291, False),  # wrapped "Auf Verbindung"
    ]


def test_route_print_marks_ipv6_rows_under_persistent_routes_as_persistent():
    text = (
        "IPv6 Route Table\n"
        "===========================================================================\n"
        "Active Routes:\n"
        " If Metric Network Destination      Gateway\n"
        "  1    331 ::1/128                  On-link\n"
        "===========================================================================\n"
        "Persistent Routes:\n"
        " If Metric Network Destination      Gateway\n"
        "  0 4294967295 fd00:96::/108        fd00:77::1\n"
    )
    table = parse_windows_route_print(text)
    assert [(str(r.destination), str(r.gateway), r.persistent) for r in table] == [
        ("::1/128", "None", False),
        ("fd00:96::/108", "fd00:77::1", True),
    ]


def test_route_print_skips_a_wrapped_row_that_never_gets_its_gateway(caplog):
    text = (
        "IPv6 Route Table\n"
        "Active Routes:\n"
        " 12    291 fe80::4c1d:9e2f:7a3b:1c55/128\n"
        "===========================================================================\n"
    )
    with caplog.at_level(logging.WARNING, logger="k8sreach.routes"):
        assert parse_windows_route_print(text) == []
    assert "row without a gateway: '12    291 fe80::4c1d:9e2f:7a3b:1c55/128'" in caplog.text


def test_route_print_rejects_text_without_a_route_table():
    with pytest.raises(RouteReadError) as caught:
        parse_windows_route_print("The requested operation requires elevation.\r\n")
    assert str(caught.value) == (
        "not `route print` output: no 'IPv4 Route Table' or 'IPv6 Route Table' section and no "
        "route rows found"
    )


# --- lookup ---------------------------------------------------------------------------------


def test_lookup_prefers_the_longest_prefix_over_a_lower_metric(linux_v4):
    route = lookup(linux_v4, "10.96.0.10")
    assert (route.destination, route.gateway, route.metric) == (
        net("10.96.0.10/32"),
        ip("10.244.0.254"),
        50,
    )


def test_lookup_between_equal_prefixes_takes_the_lowest_metric(linux_v4, windows):
    assert lookup(linux_v4, "203.0.113.7").interface == "eth0"  # metric 100, not wg0's 600
    assert lookup(windows, "224.0.0.251").interface == "10.66.0.2"  # 261 beats 291, 331, 5256


def test_lookup_with_only_the_default_route_matching_returns_it(linux_v4):
    route = lookup(linux_v4, ip("203.0.113.7"))
    assert (route.is_default, str(route.gateway)) == (True, "192.168.77.1")


def test_lookup_without_any_matching_route_returns_none(linux_v4):
    without_default = [r for r in linux_v4 if not r.is_default]
    assert lookup(without_default, "203.0.113.7") is None
    assert lookup(linux_v4, "fd00:96::1") is None  # no IPv6 route in the IPv4 table


def test_lookup_ignores_a_persistent_only_windows_route(windows):
    assert lookup(windows, "10.200.0.5").is_default
    route = lookup(windows, "10.96.0.1")
    assert (route.persistent, route.metric) == (False, 36)


def test_lookup_ignores_interface_scoped_macos_routes(macos):
    assert lookup(macos, "203.0.113.7").flags == "UGScg"  # not the scoped utun4 default
    assert lookup(macos, "2001:db8::1").interface == "en0"  # not the scoped utun0 one first
    assert lookup(macos, "10.96.0.10").interface == "utun4"
    assert lookup(macos, "10.96.0.1").interface == "en0"


def test_lookup_of_a_link_local_address_keeps_to_the_interface_its_zone_names(macos, windows):
    route = lookup(macos, "fe80::1c8a:2b3c:4d5e:6f70%en0")
    assert (route.destination, route.interface, route.flags) == (net("fe80::/64"), "en0", "UCI")
    route = lookup(windows, "fe80::8d2a:51f7:c0e4:6b19%19")
    assert (route.destination.prefixlen, route.interface) == (128, "19")


def test_lookup_consults_the_local_table_first_and_never_other_tables(linux_json):
    assert lookup(linux_json, "127.0.0.1").table == "local"
    # Table 100 holds fd00:96::10/128 and 10.96.0.0/12 via wg0; without rules they are unused.
    assert (
        lookup(linux_json, "fd00:96::10").destination,
        lookup(linux_json, "10.96.0.1").table,
    ) == (
        net("fd00:96::/108"),
        "main",
    )


# --- covering and inside --------------------------------------------------------------------


def test_covering_returns_the_route_for_the_whole_service_cidr(linux_v4):
    assert covering(linux_v4, "10.96.0.0/12").destination == net("10.96.0.0/12")
    assert covering(linux_v4, net("10.96.0.0/16")).destination == net("10.96.0.0/12")


def test_covering_a_range_wider_than_any_route_falls_back_to_the_default(linux_v4):
    route = covering(linux_v4, "10.0.0.0/8")
    assert (route.is_default, route.interface) == (True, "eth0")


def test_covering_ignores_a_persistent_only_windows_route(windows):
    assert covering(windows, "10.200.0.0/16").is_default


def test_covering_a_network_of_the_other_family_returns_none(linux_v4):
    assert covering(linux_v4, "fd00:96::/108") is None


def test_inside_lists_the_more_specific_routes_that_split_a_range(linux_v4, macos):
    assert [(str(r.destination), r.interface) for r in inside(linux_v4, "10.96.0.0/12")] == [
        ("10.96.0.10/32", "wg0")
    ]
    assert [str(r.destination) for r in inside(macos, "10.0.0.0/8")] == [
        "10.66.0.1/32",
        "10.96.0.0/12",
        "10.96.0.10/32",
        "10.244.1.0/24",
    ]


def test_inside_leaves_out_the_covering_route_itself(windows):
    assert [str(r.destination) for r in inside(windows, "10.96.0.10/32")] == []
    assert [str(r.destination) for r in inside(windows, "10.96.0.0/12")] == ["10.96.0.10/32"]


# --- read_local_routes ----------------------------------------------------------------------


class FakeRun:
    def __init__(self, stdout: bytes = b"", returncode: int = 0, stderr: bytes = b"", exc=None):
        self.result = subprocess.CompletedProcess([], returncode, stdout, stderr)
        self.exc = exc
        self.calls: list[tuple[list[str], float]] = []

    def __call__(self, argv, capture_output, timeout, check):
        self.calls.append((argv, timeout))
        if self.exc is not None:
            raise self.exc
        return self.result


@pytest.fixture
def no_which(monkeypatch):
    monkeypatch.setattr(routes.shutil, "which", lambda name: None)


def test_read_local_routes_on_macos_runs_netstat(monkeypatch, no_which):
    run = FakeRun((FIXTURES / "macos_netstat_rn.txt").read_bytes())
    monkeypatch.setattr(routes.subprocess, "run", run)
    table = read_local_routes(platform="darwin")
    assert (run.calls, len(table)) == ([(["/usr/sbin/netstat", "-rn"], 5.0)], 32)


def test_read_local_routes_on_windows_runs_route_print(monkeypatch, no_which):
    monkeypatch.setenv("SystemRoot", "C:\\WINDOWS")
    run = FakeRun((FIXTURES / "windows_route_print.txt").read_bytes())
    monkeypatch.setattr(routes.subprocess, "run", run)
    table = read_local_routes(timeout=2.0, platform="win32")
    assert (run.calls, len(table)) == ([(["C:\\WINDOWS\\System32\\ROUTE.EXE", "print"], 2.0)], 37)


def test_read_local_routes_on_linux_reads_proc(monkeypatch):
    monkeypatch.setattr(routes, "read_linux_routes", lambda: ["from /proc"])
    assert read_local_routes(platform="linux") == ["from /proc"]


@pytest.mark.parametrize(
    ("run", "message"),
    [
        (
            FakeRun(exc=subprocess.TimeoutExpired(["netstat"], 5.0)),
            "`netstat -rn` did not finish within 5 s; the routing table was not read",
        ),
        (
            FakeRun(exc=FileNotFoundError(2, "No such file or directory")),
            "cannot run `netstat -rn`: /usr/sbin/netstat not found",
        ),
        (
            FakeRun(returncode=1, stderr=b"netstat: sysctl: Operation not permitted\n"),
            "`netstat -rn` exited with status 1: netstat: sysctl: Operation not permitted",
        ),
        (
            FakeRun(stdout=b"Usage: netstat [-AaLlnW] [-f address_family | -p protocol]\n"),
            "not `netstat -rn` output: no 'Destination Gateway Flags ... Netif' header found",
        ),
    ],
)
def test_read_local_routes_failure_is_one_line_saying_what_went_wrong(
    monkeypatch, no_which, run, message
):
    monkeypatch.setattr(routes.subprocess, "run", run)
    with pytest.raises(RouteReadError) as caught:
        read_local_routes(platform="darwin")
    assert str(caught.value) == message


def test_read_local_routes_on_another_platform_says_which_are_supported():
    with pytest.raises(RouteReadError) as caught:
        read_local_routes(platform="freebsd14")
    assert str(caught.value) == (
        "reading the routing table is not supported on 'freebsd14' (Linux, macOS and Windows are)"
    )
