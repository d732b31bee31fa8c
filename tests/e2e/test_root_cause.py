"""Every fault the lab can inject reads as one fault: one root cause, the rest caused_by it."""

from __future__ import annotations

import pytest

from k8sreach.lab import FAULTS
from tests.e2e.helpers import doctor, fault

pytestmark = pytest.mark.lab

# The root cause a correct diagnosis names for each fault (None: nothing fails; the fault
# shows as a warning or as skipped gateway checks).
EXPECTED_ROOT = {
    "client-route-removed": "route-present",
    "client-route-wrong-hop": "route-present",
    "dns-proxy-stopped": "dns-resolves",
    "dns-upstream-broken": "dns-resolves",
    # Without the API the stale address is still a ClusterIP; the gateway has no rule for it.
    "kube-dns-stale": "kube-proxy-rules",
    "no-endpoints-reject": "kube-proxy-rules",
    "dnat-removed": "kube-proxy-rules",
    "pod-listener-stopped": "tcp-connect",
    "ip-forward-off": "gateway-forwarding",
    "ip-forward-not-persisted": None,
    "forward-policy-drop": "gateway-forwarding",
    "rp-filter-strict": None,
    "bgp-peer-stopped": "bgp-peer-established",
    "bgp-bad-peer-as": "bgp-peer-established",
    "pod-route-not-exported": "bgp-peer-established",
    "kube-proxy-segfault": "kube-proxy-binary",
    "kube-proxy-panic": "kube-proxy-binary",
    "kube-proxy-checksum-mismatch": "kube-proxy-binary",
    "ssh-down": None,
    "ssh-blackhole": None,
    "gateway-drop-all": "tcp-connect",
}


def test_every_lab_fault_has_an_expected_diagnosis():
    assert sorted(FAULTS) == sorted(EXPECTED_ROOT)


@pytest.mark.parametrize("name", sorted(EXPECTED_ROOT))
def test_fault_has_exactly_one_root_cause(lab, name):
    with fault(lab, name):
        run = doctor(lab, "--timeout", "1")
    failed = [c for c in run.doc["checks"] if c["status"] == "fail"]
    roots = [c["id"] for c in failed if "caused_by" not in c]
    expected = EXPECTED_ROOT[name]
    assert run.doc["first_failure"] == expected, run.statuses()
    if expected is None:
        assert failed == []
        assert run.code == 0
        return
    assert roots == [expected], run.statuses()
    for c in failed:
        if c["id"] != expected:
            assert c["caused_by"] == expected, (c["id"], c.get("caused_by"))
    skipped_by_fault = [
        c for c in run.doc["checks"] if c["status"] == "skip" and c.get("caused_by")
    ]
    assert all(c["caused_by"] == expected for c in skipped_by_fault)
    assert run.code == 1
