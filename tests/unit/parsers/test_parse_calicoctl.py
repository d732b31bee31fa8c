"""`calicoctl node status` parsing."""

from __future__ import annotations

import pytest

from k8sreach.parsers import ParseError
from k8sreach.parsers.calicoctl import Peer, parse_node_status


def test_field_fixture_mesh_established_and_global_peer_idle(fixture_text):
    status = parse_node_status(fixture_text("calicoctl-node-status.txt"))

    assert status.running is True
    assert len(status.ipv4) == 9
    assert status.ipv4[0] == Peer(
        "10.20.2.71", "node-to-node mesh", "up", "04:08:47", "Established"
    )
    assert status.ipv4[1] == Peer("10.20.2.71", "global", "start", "04:08:43", "Idle")
    assert status.ipv4[1].bgp_state == "Idle"
    assert not status.ipv4[1].established
    assert status.ipv6 == ()
    assert status.notes == ()


def test_wrapped_info_cells_are_joined_with_a_space(fixture_text):
    status = parse_node_status(fixture_text("calicoctl-node-status-wrapped.txt"))

    assert [(p.address, p.type, p.since, p.info) for p in status.ipv4] == [
        ("10.20.2.71", "global", "08:57:08", "Active Socket: Connection refused"),
        ("10.20.2.72", "node-to-node mesh", "2023-09-21", "Established"),
        ("10.20.2.73", "node-to-node mesh", "08:57:09", "Active Socket: Connection closed"),
        ("10.20.2.74", "node specific", "08:57:10", "Connect Socket: Host is unreachable"),
    ]
    assert status.ipv4[0].bgp_state == "Active"
    assert status.ipv4[0].message == "Socket: Connection refused"
    assert status.ipv6 == ()


def test_not_running_has_no_peers(fixture_text):
    status = parse_node_status(fixture_text("calicoctl-node-status-not-running.txt"))

    assert status.running is False
    assert (status.ipv4, status.ipv6) == ((), ())


def test_ipv6_section_peers_and_no_ipv4_peers(fixture_text):
    status = parse_node_status(fixture_text("calicoctl-node-status-ipv6.txt"))

    assert status.ipv4 == ()
    assert [(p.address, p.info) for p in status.ipv6] == [
        ("fd00:20::2:71", "Established"),
        ("fd00:20::2:72", "Idle BGP Error: Bad peer AS"),
    ]
    assert status.ipv6[1].message == "BGP Error: Bad peer AS"


def test_bird6_not_running_line_is_kept_as_a_note(fixture_text):
    status = parse_node_status(fixture_text("calicoctl-node-status-bird6-missing.txt"))

    assert len(status.ipv4) == 1
    assert status.notes == ("INFO: BIRDv6 process: 'bird6' is not running.",)


def test_extra_column_is_tolerated():
    text = (
        "Calico process is running.\n\nIPv4 BGP status\n"
        "+----+----+----+----+----+----+\n"
        "| PEER ADDRESS | PEER TYPE | STATE | SINCE | INFO | EXTRA |\n"
        "+----+----+----+----+----+----+\n"
        "| 10.0.0.1 | global | up | 01:02:03 | Established | x |\n"
        "+----+----+----+----+----+----+\n"
    )

    assert parse_node_status(text).ipv4 == (
        Peer("10.0.0.1", "global", "up", "01:02:03", "Established"),
    )


def test_other_text_raises_naming_the_line():
    with pytest.raises(ParseError) as error:
        parse_node_status("calicoctl: command not found\n")

    assert (error.value.line_no, error.value.line) == (1, "calicoctl: command not found")


def test_empty_output_raises():
    with pytest.raises(ParseError, match="empty"):
        parse_node_status("")
