"""bgp-peer-established without SSH: the nodes' sessions with the gateway from Calico's
CalicoNodeStatus, read through FakeApiServer on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from checks.bgp_peer_established import BgpPeerEstablished, judge_calico, peers_from_calico
from k8sreach import runner
from k8sreach.config import Settings
from k8sreach.context import Unavailable
from k8sreach.result import Report, Status
from k8sreach.target import parse_target
from k8sreach.testing import kubeapi
from k8sreach.testing.kubeapi import FakeApiServer

_PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")
GATEWAY = "10.77.2.71"  # the gateway's address on the node network (never contacted)
NO_SSH = "no access to the gateway: give --ssh DEST (or --on-gateway when k8sreach runs on"


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("KUBECONFIG", raising=False)


def _status(node: str, gateway_state: str = "Established") -> dict:
    return kubeapi.calico_node_status(
        f"{node}-status",
        node=node,
        peers=[
            kubeapi.bgp_peer(GATEWAY, type="GlobalPeer", state=gateway_state),
            kubeapi.bgp_peer("10.77.2.69", type="NodeMesh"),
        ],
    )


def _run(server: FakeApiServer, tmp_path: Path, **settings: object) -> Report:
    config = server.write_kubeconfig(tmp_path / "config")
    return runner.run(
        [BgpPeerEstablished()],
        Settings(kubeconfig=str(config), timeout=1.0, **settings),  # type: ignore[arg-type]
        parse_target("mysql-read.default"),
    )


@pytest.fixture
def calico() -> Iterator[FakeApiServer]:
    with FakeApiServer([_status("node-1"), _status("node-2")]) as server:
        yield server


def test_established_sessions_with_the_gateway_pass_from_the_api_without_ssh(
    calico: FakeApiServer, tmp_path: Path
):
    row = _run(calico, tmp_path).results[0]

    assert row.status is Status.PASS
    assert row.summary == (
        "all 2 BGP sessions with the gateway Established as the nodes report them in "
        f"CalicoNodeStatus (node-1 -> {GATEWAY}, node-2 -> {GATEWAY}); the gateway's routes "
        "are not read without SSH"
    )
    assert row.evidence["source"] == "CalicoNodeStatus (node-1, node-2)"
    assert [(p["node"], p["address"], p["type"], p["info"]) for p in row.evidence["peers"]] == [
        ("node-1", GATEWAY, "global", "Established"),
        ("node-2", GATEWAY, "global", "Established"),
    ]
    assert [s["address"] for s in row.evidence["other_sessions"]] == ["10.77.2.69", "10.77.2.69"]
    assert row.evidence["gateway_access"].startswith(NO_SSH)


def test_a_node_whose_session_is_active_fails_naming_node_and_cause(tmp_path: Path):
    with FakeApiServer([_status("node-1"), _status("node-2", "Active")]) as server:
        row = _run(server, tmp_path).results[0]

    assert row.status is Status.FAIL
    assert row.summary == (
        f"node-2 reports its BGP session with {GATEWAY} (global) Active: calico-node on node-2 "
        f"keeps trying to connect to {GATEWAY} and gets no session: nothing answers on TCP 179 "
        "there (BIRD not running, not configured to peer with this node, or filtered)"
    )
    assert "on node-2: `calicoctl node status`" in row.remediation


def test_no_calico_in_the_api_skips_with_the_ssh_reason_first(tmp_path: Path):
    with FakeApiServer([], calico_api=()) as server:
        row = _run(server, tmp_path).results[0]

    assert row.status is Status.SKIP
    assert row.summary.startswith(NO_SSH)
    assert "; and the API gives no BGP state: " in row.summary
    assert "serves no CalicoNodeStatus" in row.summary


def test_no_calico_node_status_objects_skip_saying_how_to_create_them(tmp_path: Path):
    with FakeApiServer([]) as server:
        row = _run(server, tmp_path).results[0]

    assert row.status is Status.SKIP
    assert row.summary.startswith(NO_SSH)
    assert row.summary.endswith(
        "; the API has no CalicoNodeStatus: create one per node (spec.node, classes [BGP]) so "
        "calico-node reports its BGP sessions there, or give --ssh DEST"
    )


def test_expired_credentials_skip_naming_the_request(calico: FakeApiServer, tmp_path: Path):
    calico.credentials_expired = True

    row = _run(calico, tmp_path).results[0]

    assert row.status is Status.SKIP
    assert "cannot list caliconodestatuses: " in row.summary
    assert "(401 Unauthorized)" in row.summary


def test_no_kubeconfig_and_no_ssh_keeps_the_usual_reason(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    monkeypatch.setenv("HOME", str(tmp_path))

    report = runner.run([BgpPeerEstablished()], Settings(), parse_target("mysql-read.default"))

    assert report.results[0].status is Status.SKIP
    assert report.results[0].summary.startswith(NO_SSH)


def test_the_given_gateway_address_picks_its_sessions_among_several_peers():
    status = kubeapi.calico_node_status(
        "node-1",
        peers=[
            kubeapi.bgp_peer("10.77.2.71", type="NodePeer"),
            kubeapi.bgp_peer("10.77.2.72", type="GlobalPeer", state="Idle"),
        ],
    )

    chosen, others = peers_from_calico([status], gateway="10.77.2.71")

    assert [(p.address, p.type) for p in chosen] == [("10.77.2.71", "node specific")]
    assert [p.address for p in others] == ["10.77.2.72"]


def test_only_mesh_sessions_mean_the_gateway_is_no_peer():
    status = kubeapi.calico_node_status(
        "node-1", peers=[kubeapi.bgp_peer("10.77.2.69", type="NodeMesh")]
    )

    finding = judge_calico([status], None, [])

    assert finding.status is Status.FAIL
    assert finding.summary == (
        "no node reports a BGP session with the gateway in CalicoNodeStatus (node-1)"
    )


def test_statuses_calico_node_has_not_filled_in_are_not_judged():
    status = kubeapi.calico_node_status("node-1", last_updated=None)

    with pytest.raises(Unavailable, match="calico-node has not reported"):
        judge_calico([status], None, [])
