from __future__ import annotations

import time

from k8sreach import check as facts
from k8sreach import runner
from k8sreach.check import Check
from k8sreach.config import Settings
from k8sreach.result import Hop, Status, failed, passed
from k8sreach.target import parse_target

TARGET = parse_target("mysql-read.default:3306")


class Resolver(Check):
    """Gives an address after a short wait."""

    id = "resolver"
    hop = Hop.DNS
    provides = (facts.ADDRESS,)
    delay = 0.0
    fail = False

    def run(self, ctx):
        time.sleep(self.delay)
        if self.fail:
            return failed("no answer")
        return passed("resolved", facts={facts.ADDRESS: "10.96.86.83"})


class Connector(Check):
    """Needs the address."""

    id = "connector"
    hop = Hop.SERVICE
    needs = (facts.ADDRESS, facts.PORT)
    provides = (facts.REACHABLE,)

    def run(self, ctx):
        return passed(
            f"to {ctx.fact(facts.ADDRESS)}:{ctx.fact(facts.PORT)}", facts={facts.REACHABLE: True}
        )


class Sleeper(Check):
    """Sleeps past any deadline."""

    id = "sleeper"
    hop = Hop.GATEWAY

    def run(self, ctx):
        time.sleep(30)
        return passed("never")


class Crasher(Check):
    """Raises."""

    id = "crasher"
    hop = Hop.CLIENT

    def run(self, ctx):
        raise RuntimeError("parser exploded on line 3")


class Gatewayish(Check):
    """Needs gateway access."""

    id = "gatewayish"
    hop = Hop.GATEWAY
    needs = (facts.GATEWAY,)

    def run(self, ctx):
        return passed("looked")


def test_results_come_in_path_order_and_facts_flow_to_dependants():
    report = runner.run([Connector(), Resolver()], Settings(), TARGET)
    assert [r.id for r in report.results] == ["resolver", "connector"]
    assert report.results[1].summary == "to 10.96.86.83:3306"
    assert report.reachable is True
    assert report.exit_code == 0


def test_failed_provider_skips_the_dependant_and_names_the_cause():
    bad = Resolver()
    bad.fail = True
    report = runner.run([bad, Connector()], Settings(), TARGET)
    conn = report.results[1]
    assert conn.status is Status.SKIP
    assert conn.summary == "no address to probe: resolver failed"
    assert conn.caused_by == "resolver"
    assert report.first_failure.id == "resolver"
    assert report.reachable is False
    assert report.exit_code == 1


def test_unknown_port_skips_with_the_reason():
    report = runner.run([Resolver(), Connector()], Settings(), parse_target("a.b"))
    assert report.results[1].summary == "no port known: give -p PORT or TARGET:PORT"


def test_a_crashing_check_is_an_error_with_its_message_not_swallowed():
    report = runner.run([Crasher(), Resolver()], Settings(), TARGET)
    crash = report.results[0]
    assert crash.status is Status.ERROR
    assert crash.summary == "the check crashed: RuntimeError: parser exploded on line 3"
    assert report.results[1].status is Status.PASS
    assert report.exit_code == 3


def test_a_hanging_check_costs_the_deadline_not_more():
    start = time.monotonic()
    report = runner.run([Sleeper(), Resolver()], Settings(timeout=0.2, deadline=0.5), TARGET)
    elapsed = time.monotonic() - start
    assert elapsed < 1.0
    sleeper = next(r for r in report.results if r.id == "sleeper")
    assert sleeper.status is Status.ERROR
    assert sleeper.summary == "did not finish within the run's deadline of 0.5 s"


def test_independent_checks_run_concurrently():
    slow = [
        type(f"Slow{i}", (Resolver,), {"id": f"slow{i}", "delay": 0.3, "provides": ()})()
        for i in range(5)
    ]
    start = time.monotonic()
    report = runner.run(slow, Settings(), TARGET)
    assert time.monotonic() - start < 0.9
    assert all(r.status is Status.PASS for r in report.results)


def test_gateway_check_without_access_skips_saying_how_to_give_it():
    report = runner.run([Gatewayish()], Settings(), TARGET)
    assert report.results[0].status is Status.SKIP
    assert report.results[0].summary.startswith("no access to the gateway: give --ssh DEST")
    assert report.exit_code == 0


class RouteLike(Check):
    """Fails first."""

    id = "route-like"
    hop = Hop.CLIENT

    def run(self, ctx):
        return failed("no route")


class TimeoutLike(Connector):
    """Fails because of the route."""

    id = "timeout-like"
    explained_by = ("route-like",)

    def run(self, ctx):
        return failed("timed out")


def test_a_failure_explained_by_an_earlier_one_is_marked_caused_by_it():
    report = runner.run([TimeoutLike(), RouteLike(), Resolver()], Settings(), TARGET)
    timeout = next(r for r in report.results if r.id == "timeout-like")
    assert timeout.status is Status.FAIL
    assert timeout.caused_by == "route-like"
    assert report.first_failure.id == "route-like"


def test_an_unrelated_later_failure_stays_its_own_root_cause():
    report = runner.run([Connector(), RouteLike(), Resolver()], Settings(), TARGET)
    assert next(r for r in report.results if r.id == "connector").caused_by is None


class LaterCause(Check):
    """Fails after the timeout in path order but explains it."""

    id = "later-cause"
    hop = Hop.SERVICE
    order = 999
    explained_by = ("timeout-like",)

    def run(self, ctx):
        return failed("the real cause")


def test_a_cause_later_on_the_path_still_explains_and_mutual_claims_do_not_loop():
    class Explained(TimeoutLike):
        id = "timeout-like"
        explained_by = ("later-cause",)

    report = runner.run([Explained(), LaterCause(), Resolver()], Settings(), TARGET)
    marks = {r.id: r.caused_by for r in report.results}
    assert marks["timeout-like"] == "later-cause"
    assert marks["later-cause"] is None
    assert report.first_failure.id == "later-cause"


class HostileProvider(Check):
    """Publishes what a hostile answer might hold."""

    id = "hostile"
    hop = Hop.DNS
    provides = (facts.ADDRESS, facts.PORT)

    def run(self, ctx):
        return passed("sure", facts={facts.ADDRESS: "evil.example", facts.PORT: "eighty"})


def test_facts_that_are_not_addresses_or_ports_are_never_published():
    report = runner.run([HostileProvider(), Connector()], Settings(), parse_target("a.b"))
    conn = next(r for r in report.results if r.id == "connector")
    assert conn.status is Status.SKIP
    assert conn.summary.startswith("no address to probe")


def test_tcp_probe_never_resolves_a_name():
    from k8sreach.tcpprobe import connect

    out = connect("localhost", 80, 0.5)
    assert out.kind == "error"
    assert out.message == "not an IP address; k8sreach never resolves names here"
