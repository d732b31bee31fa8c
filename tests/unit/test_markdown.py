"""The Markdown report: the chain, then the runbook steps with the run's real addresses."""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path

from checks import gateway_forwarding as fwd
from checks import route_present, tcp_connect
from k8sreach import runbooks
from k8sreach.markdown import render_markdown
from k8sreach.parsers.sysctl import effective_setting
from k8sreach.result import CheckResult, Finding, Hop, Report, Status, failed, passed
from k8sreach.routes import parse_ip_json_route, parse_windows_route_print
from k8sreach.target import Target
from k8sreach.tcpprobe import TcpOutcome

FIX = Path(__file__).resolve().parent.parent / "fixtures"
TARGET = Target("mysql-read", "default", "cluster.local", 3306)
DESTINATIONS = [
    ("10.96.86.83", ipaddress.ip_address("10.96.86.83")),
    ("10.96.0.0/12", ipaddress.ip_network("10.96.0.0/12")),
]


def _result(check_id, hop, finding: Finding, caused_by=None, address=None) -> CheckResult:
    return CheckResult(
        check_id,
        hop,
        finding.status,
        finding.summary,
        finding.evidence,
        finding.remediation,
        1.0,
        address or finding.address,
        caused_by,
    )


def _dns_pass() -> CheckResult:
    evidence = {
        "server": "192.168.77.53:53",
        "rcode": "NOERROR",
        "answers": ["10.96.86.83"],
        "server_from": "--dns",
    }
    finding = passed(
        "mysql-read.default.svc.cluster.local. -> 10.96.86.83 (ClusterIP) in 1.2 ms",
        evidence=evidence,
        address="192.168.77.53:53",
    )
    return _result("dns-resolves", Hop.DNS, finding)


def _timeout() -> CheckResult:
    outcome = TcpOutcome("10.96.86.83", 3306, "timeout", 2001.0, "ETIMEDOUT", "no answer")
    finding = tcp_connect.classify(outcome, TARGET, 2.0, "192.168.77.1")
    return _result("tcp-connect", Hop.SERVICE, finding, caused_by="route-present")


def _route_removed_report() -> Report:
    """The lab's client-route-removed fault: only the default route, to the office router."""
    routes = parse_ip_json_route(
        '[{"dst":"default","gateway":"192.168.77.254","dev":"eth0"},'
        '{"dst":"192.168.77.0/24","dev":"eth0","protocol":"kernel","scope":"link",'
        '"prefsrc":"192.168.77.10"}]'
    )
    route = route_present.judge(routes, DESTINATIONS, "192.168.77.1", platform="linux")
    results = (_result("route-present", Hop.CLIENT, route), _dns_pass(), _timeout())
    return Report(TARGET.as_dict(), results, False, 2013.4)


def _code_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)\n *```", text, re.S)


def test_failing_run_renders_the_route_steps_with_the_real_addresses():
    text = render_markdown(_route_removed_report(), os_name="linux")

    assert text.startswith("# k8sreach doctor mysql-read.default\n")
    assert "**Result: NOT reachable** (2013 ms). Root cause: `route-present` (client)" in text
    assert "## Root cause: route-present" in text
    assert "### Runbook `route-default-only`: only the default route matches" in text
    steps = "\n".join(_code_blocks(text, "sh"))
    assert "sudo ip route replace 10.96.0.0/12 via 192.168.77.1" in steps
    assert "DEV=eth0    # the interface toward 192.168.77.1" in steps
    assert 'sudo nmcli connection modify "$CONN" +ipv4.routes "10.96.0.0/12 192.168.77.1"' in steps
    assert "ip route get 10.96.86.83    # must say: via 192.168.77.1" in steps
    assert "Then run `k8sreach doctor mysql-read.default:3306` again." in text
    assert runbooks.unfilled(text) == []
    assert "Values to fill in" not in text


def test_chain_table_lists_every_check_in_path_order():
    text = render_markdown(_route_removed_report(), os_name="linux")
    lines = text.splitlines()
    at = lines.index("| Hop | Address | Check | Status | Detail |")
    assert lines[at + 1] == "| --- | --- | --- | --- | --- |"
    assert lines[at + 2].startswith("| client | 10.96.86.83 | route-present | **FAIL** | no route")
    assert lines[at + 3].startswith("| dns | 192.168.77.53:53 | dns-resolves | PASS | ")
    assert lines[at + 4] == (
        "| service | 10.96.86.83:3306 | tcp-connect | **FAIL** | connection to 10.96.86.83:3306 "
        "timed out after 2 s (no answer at all) (caused by route-present) |"
    )


def test_evidence_is_a_json_block_and_caused_failures_are_listed():
    report = _route_removed_report()
    text = render_markdown(report, os_name="linux")

    (evidence,) = _code_blocks(text, "json")
    assert json.loads(evidence) == report.results[0].evidence
    assert "## Explained by another failure" in text
    assert (
        "- `tcp-connect` (fail): connection to 10.96.86.83:3306 timed out after 2 s (no answer "
        "at all); caused by `route-present`"
    ) in text
    assert "## Root cause: tcp-connect" not in text


def test_markdown_is_deterministic_and_ends_with_the_generated_line():
    report = _route_removed_report()
    first = render_markdown(report, os_name="linux")
    assert first == render_markdown(report, os_name="linux")
    assert first.endswith(
        "Generated by k8sreach 0.1.0; `k8sreach runbook` lists every runbook, "
        "`k8sreach runbook ID` prints one.\n"
    )


def test_windows_client_gets_the_route_add_form_from_its_own_routing_table():
    routes = parse_windows_route_print((FIX / "routes" / "windows_route_print.txt").read_text())
    routes = [r for r in routes if not str(r.destination).startswith("10.96.")]
    route = route_present.judge(routes, DESTINATIONS, "192.168.77.254", platform="win32")
    report = Report(TARGET.as_dict(), (_result("route-present", Hop.CLIENT, route),), False, 5.0)

    text = render_markdown(report)  # the OS comes from where the routing table was read

    steps = "\n".join(_code_blocks(text, "powershell"))
    assert "**On this client (Windows, elevated PowerShell):**" in text
    assert "route ADD -p 10.96.0.0 MASK 255.240.0.0 192.168.77.254" in steps
    assert "Active Routes must list: 10.96.0.0  255.240.0.0  192.168.77.254  192.168.77.20" in steps
    assert "(`0.0.0.0  0.0.0.0  192.168.77.1  192.168.77.20  35`)" in text
    assert "sudo ip route" not in text
    assert runbooks.unfilled(text) == []


def _forwarding(live: str, files: list[tuple[str, str]]) -> Finding:
    return fwd.judge(
        fwd.Forwarding(
            live=live,
            persisted=effective_setting(files, fwd.KEY),
            iptables_policy="ACCEPT",
            iptables_accepts=[],
            nft_drops=[],
            rp_filter={},
            cidrs=["10.244.0.0/16", "10.96.0.0/12"],
            tool="iptables-nft-save",
        )
    )


def test_gateway_root_cause_has_gateway_steps_with_its_address_and_files():
    off = _forwarding("0", [("/etc/sysctl.conf", "net.ipv4.ip_forward = 0\n")])
    gateway = _result("gateway-forwarding", Hop.GATEWAY, off, address="192.168.77.1")
    report = Report(TARGET.as_dict(), (_dns_pass(), gateway, _timeout()), False, 2100.0)

    text = render_markdown(report, os_name="windows")

    assert "## Root cause: gateway-forwarding" in text
    assert "1. **On the gateway 192.168.77.1, as root:** Turn forwarding on now." in text
    steps = "\n".join(_code_blocks(text, "sh"))
    assert "sysctl -w net.ipv4.ip_forward=1" in steps
    assert "net.ipv4.ip_forward = 1/' /etc/sysctl.conf" in steps
    assert "sysctl --system >/dev/null && sysctl net.ipv4.ip_forward" in steps
    assert runbooks.unfilled(text) == []


def test_warnings_get_their_runbook_when_nothing_failed():
    later = [
        ("/etc/sysctl.d/99-k8s.conf", "net.ipv4.ip_forward = 1\n"),
        ("/etc/sysctl.conf", "net.ipv4.ip_forward = 0\n"),
    ]
    warn = _result(
        "gateway-forwarding", Hop.GATEWAY, _forwarding("1", later), address="192.168.77.1"
    )
    ok = _result("tcp-connect", Hop.SERVICE, passed("connected to 10.96.86.83:3306 in 1 ms"))
    report = Report(TARGET.as_dict(), (warn, ok), True, 40.0)

    text = render_markdown(report, os_name="linux")

    assert "**Result: reachable** (40 ms), with warnings" in text
    assert "## Warning: gateway-forwarding" in text
    assert "### Runbook `forwarding-not-persisted`" in text
    assert "grep -n ip_forward /etc/sysctl.conf" in text
    assert "Root cause" not in text


def test_a_check_without_runbook_shows_its_own_advice():
    plugin = failed("the widget is down", evidence={"widget": "w1"}, remediation="Restart w1.")
    result = _result("widget-check", Hop.SERVICE, plugin)
    text = render_markdown(Report(TARGET.as_dict(), (result,), False, 3.0), os_name="linux")
    assert "## Root cause: widget-check" in text
    assert "### What the check advises\n\n```text\nRestart w1.\n```" in text
    assert "### Runbook" not in text


def test_table_cells_escape_pipes_and_line_breaks():
    odd = Finding(Status.FAIL, "a | b\nsecond line", {}, None, "x|y")
    text = render_markdown(
        Report(TARGET.as_dict(), (_result("widget-check", Hop.SERVICE, odd),), False, 1.0),
        os_name="linux",
    )
    assert "| service | x\\|y | widget-check | **FAIL** | a \\| b<br>second line |" in text


def test_ingress_run_is_titled_by_its_url():
    target = {
        "service": None,
        "namespace": None,
        "fqdn": None,
        "port": None,
        "url": "http://shop.example.net/cart",
        "ingress": None,
    }
    ok = _result("ingress-http", Hop.SERVICE, passed("GET ... -> 200 OK"))
    text = render_markdown(Report(target, (ok,), True, 9.0), os_name="linux")
    assert text.startswith("# k8sreach doctor http://shop.example.net/cart\n\n")
    assert "Target: `http://shop.example.net/cart`" in text
