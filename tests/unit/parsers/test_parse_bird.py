"""BIRD `show protocols`, `show protocols all` and `show route` parsing."""

from __future__ import annotations

import pytest

from k8sreach.parsers import ParseError
from k8sreach.parsers.bird import (
    parse_bird_version,
    parse_show_protocols,
    parse_show_protocols_all,
    parse_show_route,
)


def _by_name(protocols):
    return {p.name: p for p in protocols}


def test_field_fixture_established_session_reads_established(fixture_text):
    protocols = parse_show_protocols(fixture_text("bird2-show-protocols-established.txt"))

    assert [p.name for p in protocols] == ["device1", "kernel1", "node1"]
    node1 = protocols[2]
    assert (node1.proto, node1.table, node1.state, node1.since) == (
        "BGP",
        "---",
        "up",
        "13:47:44.348",
    )
    assert node1.info == "Established"
    assert node1.message == ""
    assert node1.established and node1.is_bgp


def test_protocol_without_info_has_empty_info_and_message(fixture_text):
    kernel = parse_show_protocols(fixture_text("bird2-show-protocols-established.txt"))[1]

    assert (kernel.name, kernel.proto, kernel.table, kernel.since) == (
        "kernel1",
        "Kernel",
        "master4",
        "13:47:39.700",
    )
    assert (kernel.info, kernel.message) == ("", "")
    assert not kernel.is_bgp


def test_name_longer_than_column_pushes_columns_right(fixture_text):
    peer = parse_show_protocols(fixture_text("bird2-show-protocols-peer-stopped.txt"))[2]

    assert peer.name == "peer_10_77_2_68"
    assert (peer.proto, peer.table, peer.state, peer.since) == (
        "BGP",
        "---",
        "start",
        "13:54:35.588",
    )
    assert peer.info == "Active"
    assert peer.message == "Received: Administrative shutdown"
    assert not peer.established


def test_lab_peer_failures_give_state_and_last_error(fixture_text):
    protocols = _by_name(parse_show_protocols(fixture_text("bird2-show-protocols-lab.txt")))

    observed = {
        name: (protocols[name].state, protocols[name].info, protocols[name].message)
        for name in ("bad_as", "refused", "unreach", "passive_peer", "dup_id", "off_peer")
    }
    assert observed == {
        "bad_as": ("start", "Idle", "BGP Error: Bad peer AS"),
        "refused": ("start", "Active", "Socket: Connection refused"),
        "unreach": ("start", "Active", "Socket: No route to host"),
        "passive_peer": ("start", "Passive", ""),
        "dup_id": ("start", "Active", "BGP Error: Bad BGP identifier"),
        "off_peer": ("down", "", ""),
    }
    assert protocols["node1"].established
    assert protocols["Mesh_10_79_0_2"].established


def test_peer_still_connecting_reads_connect_without_message(fixture_text):
    protocols = _by_name(parse_show_protocols(fixture_text("bird2-show-protocols-lab-connect.txt")))

    assert (protocols["unreach"].info, protocols["unreach"].message) == ("Connect", "")
    assert protocols["dup_id"].info == "Idle"


def test_birdcl_output_reads_like_birdc(fixture_text):
    birdc = parse_show_protocols(fixture_text("bird2-show-protocols-lab.txt"))
    birdcl = parse_show_protocols(fixture_text("bird2-birdcl-show-protocols.txt"))

    assert birdcl == birdc


def test_raw_socket_reply_reads_like_birdc_text(fixture_text):
    raw = parse_show_protocols(fixture_text("bird2-raw-show-protocols.txt"))
    text = parse_show_protocols(fixture_text("bird2-show-protocols-lab.txt"))

    assert [(p.name, p.state, p.since, p.info, p.message) for p in raw] == [
        (p.name, p.state, p.since, p.info, p.message) for p in text
    ]
    assert raw[0].line == "device1    Device     ---        up     14:15:46.408"


def test_raw_reply_without_banner_and_with_codes_only():
    reply = (
        "2002-Name       Proto      Table      State  Since         Info\n"
        "1002-node1      BGP        ---        up     13:47:44.348  Established   \n"
        " peer2      BGP        ---        start  13:47:44.348  Active        "
        "Socket: Connection refused\n"
        "0000 \n"
    )

    protocols = parse_show_protocols(reply)

    assert [(p.name, p.info, p.message) for p in protocols] == [
        ("node1", "Established", ""),
        ("peer2", "Active", "Socket: Connection refused"),
    ]


def test_raw_error_reply_raises_with_birds_message(fixture_text):
    with pytest.raises(ParseError) as error:
        parse_show_protocols(fixture_text("bird2-raw-syntax-error.txt"))

    assert str(error.value) == (
        "BIRD error 9001: syntax error, unexpected CF_SYM_UNDEFINED, "
        "expecting END or CF_SYM_KNOWN or TEXT or ALL"
    )


def test_raw_8xxx_error_raises():
    with pytest.raises(ParseError, match=r"^BIRD error 8003: No protocols match$"):
        parse_show_protocols("0001 BIRD 2.0.12 ready.\n8003 No protocols match\n")


def test_bird1_table_with_lowercase_header(fixture_text):
    protocols = _by_name(parse_show_protocols(fixture_text("bird1-show-protocols-lab.txt")))

    mesh = protocols["Mesh_10_79_0_1"]
    assert (mesh.proto, mesh.table, mesh.state, mesh.since, mesh.info) == (
        "BGP",
        "master",
        "up",
        "14:15:50",
        "Established",
    )
    node = protocols["Node_10_78_0_2"]
    assert (node.info, node.message) == ("Active", "Socket: Network is unreachable")


def test_bird1_iso_long_since_keeps_date_and_time(fixture_text):
    protocols = _by_name(parse_show_protocols(fixture_text("bird1-show-protocols-isolong.txt")))

    assert protocols["Mesh_10_79_0_1"].since == "2026-12-04 14:15:50"
    assert protocols["Mesh_10_79_0_1"].info == "Established"
    assert protocols["Global_10_79_0_9"].message == "Socket: No route to host"
    assert protocols["device1"].since == "2026-12-04 14:15:46"
    assert protocols["device1"].info == ""


def test_bird1_raw_reply(fixture_text):
    protocols = parse_show_protocols(fixture_text("bird1-raw-show-protocols.txt"))

    assert [p.name for p in protocols] == [
        "device1",
        "kernel1",
        "static1",
        "Mesh_10_79_0_1",
        "Global_10_79_0_9",
        "Node_10_78_0_2",
    ]


def test_bird1_calico_style_rows_by_hand():
    # BIRD 1.x as calico-node runs it: date-only since for sessions older than a day.
    text = (
        "BIRD 1.6.8 ready.\n"
        "name     proto    table    state  since       info\n"
        "static1  Static   master   up     2024-01-05  \n"
        "Mesh_10_20_2_71 BGP      master   up     04:08:47    Established   \n"
        "Global_10_20_2_71 BGP      master   start  2024-01-05  Idle          "
        "BGP Error: Bad peer AS\n"
        "Node_10_20_1_9 BGP      master   start  2024-01-05 13:47:39  Active        "
        "Socket: Connection refused\n"
    )

    protocols = _by_name(parse_show_protocols(text))

    assert protocols["Mesh_10_20_2_71"].since == "04:08:47"
    assert protocols["Global_10_20_2_71"].since == "2024-01-05"
    assert protocols["Global_10_20_2_71"].info == "Idle"
    assert protocols["Global_10_20_2_71"].message == "BGP Error: Bad peer AS"
    assert protocols["Node_10_20_1_9"].since == "2024-01-05 13:47:39"
    assert protocols["Node_10_20_1_9"].message == "Socket: Connection refused"
    assert protocols["static1"].since == "2024-01-05"


def test_unknown_time_format_with_spaces_ends_at_bgp_state_word():
    text = (
        "Name       Proto      Table      State  Since         Info\n"
        "peer1      BGP        ---        start  Jan 05 13:47  Active        "
        "Socket: Connection refused\n"
    )

    peer = parse_show_protocols(text)[0]

    assert peer.since == "Jan 05 13:47"
    assert (peer.info, peer.message) == ("Active", "Socket: Connection refused")


def test_unknown_protocols_blank_lines_and_extra_columns_are_tolerated():
    text = (
        "BIRD 2.0.12 ready.\n\n"
        "Name       Proto      Table      State  Since         Info\n"
        "\n"
        "rpki1      RPKI       ---        up     13:47:39.700  Established\n"
        "ospf1      OSPF       master4    up     13:47:39.700  Running  extra words\n"
        "short row\n"
    )

    protocols = parse_show_protocols(text)

    assert [(p.name, p.proto, p.info, p.message) for p in protocols] == [
        ("rpki1", "RPKI", "Established", ""),
        ("ospf1", "OSPF", "Running", "extra words"),
    ]


def test_birdc_error_text_raises_naming_the_line(fixture_text):
    with pytest.raises(ParseError) as error:
        parse_show_protocols(fixture_text("bird2-show-protocols-undefined-name.txt"))

    assert error.value.line_no == 2
    assert error.value.line.startswith("syntax error, unexpected CF_SYM_UNDEFINED")


def test_birdc_cannot_connect_raises_with_client_message(fixture_text):
    with pytest.raises(ParseError) as error:
        parse_show_protocols(fixture_text("bird2-birdc-no-socket.txt"))

    assert error.value.line == (
        "Unable to connect to server control socket (/run/bird/bird.ctl): No such file or directory"
    )


def test_bird1_not_a_protocol_raises(fixture_text):
    with pytest.raises(ParseError, match="nosuch is not a protocol"):
        parse_show_protocols(fixture_text("bird1-show-protocols-not-a-protocol.txt"))


def test_banner_only_or_empty_output_raises():
    with pytest.raises(ParseError, match="empty or only the banner"):
        parse_show_protocols("BIRD 2.0.12 ready.\n")
    with pytest.raises(ParseError, match="empty or only the banner"):
        parse_show_protocols("")


def test_header_without_rows_is_an_empty_table():
    assert parse_show_protocols("Name Proto Table State Since Info\n") == []


def test_show_protocols_all_established_bgp_block(fixture_text):
    details = parse_show_protocols_all(fixture_text("bird2-show-protocols-all-node1.txt"))

    node1 = details["node1"]
    assert node1.bgp_state == "Established"
    assert node1.neighbor_address == "10.77.0.2"
    assert (node1.neighbor_as, node1.local_as) == (64512, 64512)
    assert node1.neighbor_id == "10.77.0.2"
    assert node1.source_address == "10.77.0.1"
    assert node1.last_error == ""
    assert len(node1.channels) == 1
    channel = node1.channels[0]
    assert (channel.name, channel.state, channel.table) == ("ipv4", "UP", "master4")
    assert (channel.imported, channel.exported, channel.preferred) == (2, 0, 2)
    assert (channel.input_filter, channel.output_filter) == ("ACCEPT", "REJECT")
    assert channel.attributes["BGP Next hop"] == "10.77.0.1"
    assert node1.imported_routes == 2
    assert node1.attributes["Session"] == "internal multihop AS4"


def test_show_protocols_all_failed_peers_carry_last_error(fixture_text):
    details = parse_show_protocols_all(fixture_text("bird2-show-protocols-all-lab.txt"))

    observed = {
        name: (d.bgp_state, d.neighbor_address, d.neighbor_as, d.last_error)
        for name, d in details.items()
        if d.protocol.is_bgp and not d.protocol.established
    }
    assert observed == {
        "bad_as": ("Idle", "10.77.0.12", 64999, "BGP Error: Bad peer AS"),
        "peer_10_77_0_22": ("Active", "10.77.0.22", 64512, "Received: Administrative shutdown"),
        "refused": ("Active", "10.78.0.2", 64600, "Socket: Connection refused"),
        "unreach": ("Active", "10.78.0.9", 64600, "Socket: No route to host"),
        "passive_peer": ("Passive", "10.78.0.5", 64600, ""),
        "dup_id": ("Active", "10.80.0.2", 64512, "BGP Error: Bad BGP identifier"),
        "off_peer": ("Down", "10.78.0.7", 64600, ""),
    }
    assert details["refused"].channels[0].state == "DOWN"
    assert details["refused"].imported_routes is None


def test_show_protocols_all_non_bgp_protocols(fixture_text):
    details = parse_show_protocols_all(fixture_text("bird2-show-protocols-all-lab.txt"))

    assert details["device1"].channels == ()
    assert details["device1"].bgp_state == ""
    assert details["kernel1"].channels[0].exported == 3
    assert details["direct1"].channels[0].imported == 4


def test_show_protocols_all_raw_reply_matches_text(fixture_text):
    raw = parse_show_protocols_all(fixture_text("bird2-raw-show-protocols-all-node1.txt"))
    text = parse_show_protocols_all(fixture_text("bird2-show-protocols-all-node1.txt"))

    assert raw["node1"].neighbor_address == "10.77.0.2"
    assert raw["node1"].channels[0].imported == 2
    assert raw["node1"].attributes.keys() == text["node1"].attributes.keys()


def test_show_protocols_all_bird1_has_one_unnamed_channel(fixture_text):
    details = parse_show_protocols_all(fixture_text("bird1-show-protocols-all-lab.txt"))

    mesh = details["Mesh_10_79_0_1"]
    assert mesh.bgp_state == "Established"
    assert (mesh.neighbor_address, mesh.neighbor_as, mesh.neighbor_id) == (
        "10.79.0.1",
        64512,
        "10.77.0.1",
    )
    assert mesh.local_as is None
    assert [(c.name, c.table, c.imported, c.exported) for c in mesh.channels] == [
        (
            "",
            "master",
            0,
            1,
        )
    ]
    assert details["Node_10_78_0_2"].last_error == "Socket: Network is unreachable"
    assert details["static1"].imported_routes == 1


def test_show_protocols_all_bird1_raw_reply(fixture_text):
    details = parse_show_protocols_all(fixture_text("bird1-raw-show-protocols-all-mesh.txt"))

    assert list(details) == ["Mesh_10_79_0_1"]
    assert details["Mesh_10_79_0_1"].neighbor_address == "10.79.0.1"
    assert details["Mesh_10_79_0_1"].exported_routes == 1


def test_show_protocols_all_bird1_filtered_count_by_hand():
    text = (
        "name     proto    table    state  since       info\n"
        "R194_129 BGP      T1241_nada up     2018-06-21 17:42:44  Established\n"
        "  Description:    Example peer\n"
        "  Routes:         161 imported, 3 filtered, 164282 exported, 161 preferred\n"
        "  BGP state:          Established\n"
        "    Neighbor address: 192.0.2.1\n"
        "    Neighbor AS:      64496\n"
    )

    detail = parse_show_protocols_all(text)["R194_129"]

    assert detail.protocol.since == "2018-06-21 17:42:44"
    assert detail.description == "Example peer"
    channel = detail.channels[0]
    assert (channel.imported, channel.filtered, channel.exported, channel.preferred) == (
        161,
        3,
        164282,
        161,
    )


def test_bird_version_from_banner_raw_status_and_version_flag(fixture_text):
    assert parse_bird_version(fixture_text("bird2-show-protocols-lab.txt")) == "2.0.12"
    assert parse_bird_version(fixture_text("bird1-raw-show-protocols.txt")) == "1.6.8"
    assert parse_bird_version("BIRD version 2.0.12\n") == "2.0.12"
    status = fixture_text("bird2-show-status.txt").replace("BIRD 2.0.12 ready.\n", "")
    assert parse_bird_version(status) == "2.0.12"
    assert parse_bird_version("no bird here") is None


def test_show_route_bird2_routes_with_next_hops(fixture_text):
    routes = parse_show_route(fixture_text("bird2-show-route.txt"))

    by_prefix = {r.prefix: r for r in routes}
    pod = by_prefix["10.244.1.0/26"]
    assert (pod.kind, pod.protocol, pod.since, pod.primary, pod.preference) == (
        "unicast",
        "node1",
        "14:15:50.963",
        True,
        100,
    )
    assert (pod.via, pod.interface, pod.table, pod.attributes) == (
        "10.77.0.2",
        "g1",
        "master4",
        "i",
    )
    assert by_prefix["10.78.0.0/24"].interface == "g2"
    assert by_prefix["10.78.0.0/24"].via == ""
    assert len(routes) == 7


def test_show_route_raw_reply_matches_text(fixture_text):
    raw = parse_show_route(fixture_text("bird2-raw-show-route.txt"))
    text = parse_show_route(fixture_text("bird2-show-route.txt"))

    assert [(r.prefix, r.protocol, r.via, r.interface) for r in raw] == [
        (r.prefix, r.protocol, r.via, r.interface) for r in text
    ]


def test_show_route_bird1_one_line_entries(fixture_text):
    routes = parse_show_route(fixture_text("bird1-show-route.txt"))

    assert [(r.prefix, r.kind, r.protocol, r.preference) for r in routes] == [
        ("10.244.3.0/26", "blackhole", "static1", 200)
    ]


def test_show_route_bird1_via_and_alternative_route_by_hand():
    text = (
        "10.244.1.0/26      via 10.20.1.61 on eth0 [Mesh_10_20_1_61 04:08:47] * (100/0) [i]\n"
        "                   via 10.20.1.62 on eth0 [Mesh_10_20_1_62 04:08:48] (100/0) [i]\n"
    )

    routes = parse_show_route(text)

    assert [(r.prefix, r.via, r.interface, r.protocol, r.primary) for r in routes] == [
        ("10.244.1.0/26", "10.20.1.61", "eth0", "Mesh_10_20_1_61", True),
    ]


def test_show_route_error_text_raises():
    with pytest.raises(ParseError, match="not BIRD `show route` output"):
        parse_show_route("BIRD 2.0.12 ready.\nsyntax error, unexpected CF_SYM_UNDEFINED\n")


def test_node_side_sees_bad_peer_as_received_and_disabled_session_down(fixture_text):
    protocols = _by_name(parse_show_protocols(fixture_text("bird2-show-protocols-node-side.txt")))

    assert (protocols["gw_alt"].info, protocols["gw_alt"].message) == (
        "Idle",
        "Received: Bad peer AS",
    )
    assert (protocols["gw_shut"].state, protocols["gw_shut"].info) == ("down", "")
    details = parse_show_protocols_all(fixture_text("bird2-show-protocols-all-node-side.txt"))
    assert details["gw_shut"].bgp_state == "Down"
    assert details["Global_10_77_0_1"].exported_routes == 2


def test_duplicate_router_id_seen_from_the_other_side(fixture_text):
    details = parse_show_protocols_all(fixture_text("bird2-show-protocols-all-dup-id.txt"))

    assert details["to_gw"].last_error == "BGP Error: Bad BGP identifier"
    assert details["to_gw"].attributes["Error wait"] == "52.385/60"


def test_birdc_no_such_command_raises(fixture_text):
    with pytest.raises(ParseError) as error:
        parse_show_protocols(fixture_text("bird2-syntax-error.txt"))

    assert error.value.line == "No such command. Press `?' for help."


def test_show_route_all_skips_attribute_lines(fixture_text):
    routes = parse_show_route(fixture_text("bird2-show-route-all.txt"))

    assert [(r.prefix, r.protocol, r.via) for r in routes if r.protocol != "direct1"] == [
        ("10.244.1.0/26", "node1", "10.77.0.2"),
        ("10.244.3.0/26", "Mesh_10_79_0_2", "10.79.0.2"),
        ("10.244.1.64/26", "node1", "10.77.0.2"),
    ]
