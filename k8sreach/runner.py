"""Run the checks of one target: concurrently where independent, all within one deadline."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import replace

from k8sreach import check as facts
from k8sreach.check import Check
from k8sreach.config import Settings
from k8sreach.context import RunContext, Unavailable, cluster_configured
from k8sreach.result import CheckResult, Finding, Report, Status
from k8sreach.target import Target

LOG = logging.getLogger(__name__)

_PAST = {Status.FAIL: "failed", Status.ERROR: "crashed", Status.SKIP: "was skipped"}

_MISSING = {
    facts.ADDRESS: "no address to probe",
    facts.PORT: "no port known: give -p PORT or TARGET:PORT",
    facts.SERVICE: "no Service object from the API",
}


def one_line(text: str, limit: int = 1000) -> str:
    """A summary as one printable line: what a gateway printed (escape sequences, newlines)
    must not reach a terminal or a log as control characters."""
    clean = "".join(
        c if c.isprintable() else (f"\\x{ord(c):02x}" if ord(c) < 256 else "?")
        for c in str(text).replace("\n", " ").replace("\t", " ")
    )
    return clean if len(clean) <= limit else clean[: limit - 3] + "..."


def _seed(settings: Settings, target: Target) -> dict[str, object]:
    seeded: dict[str, object] = {}
    if isinstance(target.port, int):
        seeded[facts.PORT] = target.port
    if settings.ssh or settings.on_gateway:
        seeded[facts.GATEWAY] = True
    if cluster_configured(settings):
        seeded[facts.CLUSTER] = True
    return seeded


class _Plan:
    """Who provides which fact, and what each check waits for."""

    def __init__(self, checks: Sequence[Check]) -> None:
        self.checks = sorted(checks, key=lambda c: (c.hop.position, c.order, c.id))
        self.providers: dict[str, list[str]] = {}
        for chk in self.checks:
            for name in chk.provides:
                self.providers.setdefault(name, []).append(chk.id)

    def waits_for(self, chk: Check) -> set[str]:
        ids: set[str] = set()
        for name in (*chk.needs, *chk.wants):
            ids.update(p for p in self.providers.get(name, ()) if p != chk.id)
        return ids


def _missing_need(chk: Check, ctx: RunContext, plan: _Plan) -> Finding | None:
    """A skip finding when a needed fact is unknown, naming the check that failed to give it."""
    for name in chk.needs:
        if ctx.has_fact(name):
            continue
        if name == facts.GATEWAY:
            try:
                ctx.gateway()
            except Unavailable as exc:
                return Finding(Status.SKIP, exc.reason)
            continue
        if name == facts.CLUSTER:
            try:
                ctx.cluster()
            except Unavailable as exc:
                return Finding(Status.SKIP, exc.reason)
            continue
        culprit = None
        for provider in plan.providers.get(name, ()):
            res = ctx.result(provider)
            if res is not None and res.status in (Status.FAIL, Status.ERROR, Status.SKIP):
                culprit = res
                break
        reason = _MISSING.get(name, f"no {name} known")
        if culprit is not None:
            return Finding(
                Status.SKIP,
                f"{reason}: {culprit.id} {_PAST[culprit.status]}",
                caused_by=culprit.caused_by or culprit.id,
            )
        return Finding(Status.SKIP, reason)
    return None


def _execute(chk: Check, ctx: RunContext, plan: _Plan) -> CheckResult:
    start = time.monotonic()
    try:
        finding = _missing_need(chk, ctx, plan) or chk.run(ctx)
        if not isinstance(finding, Finding):
            raise TypeError(f"run() returned {type(finding).__name__}, not a Finding")
    except Unavailable as exc:
        finding = Finding(Status.SKIP, exc.reason, caused_by=exc.caused_by)
    except Exception as exc:
        LOG.debug("check %s raised", chk.id, exc_info=True)
        finding = Finding(
            Status.ERROR,
            f"the check crashed: {type(exc).__name__}: {exc}",
            evidence={"exception": type(exc).__name__, "message": str(exc)},
        )
    ctx.publish(finding.facts)
    return CheckResult(
        id=chk.id,
        hop=chk.hop,
        status=finding.status,
        summary=one_line(finding.summary),
        evidence=dict(finding.evidence),
        remediation=finding.remediation,
        duration_ms=round((time.monotonic() - start) * 1000, 1),
        address=finding.address,
        caused_by=finding.caused_by,
    )


def run(
    checks: Sequence[Check], settings: Settings, target: Target, load_errors: Sequence[str] = ()
) -> Report:
    """Run every check once and return the report, checks in path order."""
    ctx = RunContext(settings, target)
    ctx.publish(_seed(settings, target))
    plan = _Plan(checks)
    done: queue.Queue[CheckResult] = queue.Queue()
    pending = {chk.id: chk for chk in plan.checks}
    running: dict[str, float] = {}
    finished: set[str] = set()

    def worker(chk: Check) -> None:
        done.put(_execute(chk, ctx, plan))

    try:
        while pending or running:
            ready = [c for c in pending.values() if plan.waits_for(c) <= finished]
            if not ready and not running:
                # A cycle among wants/needs: run the rest rather than wait forever.
                ready = list(pending.values())
            for chk in ready:
                del pending[chk.id]
                running[chk.id] = time.monotonic()
                LOG.debug("starting %s", chk.id)
                threading.Thread(target=worker, args=(chk,), name=chk.id, daemon=True).start()
            try:
                result = done.get(timeout=max(0.0, ctx.remaining()))
            except queue.Empty:
                break
            running.pop(result.id, None)
            finished.add(result.id)
            ctx.record(result)

        now = time.monotonic()
        limit = settings.run_deadline
        for check_id, started in running.items():
            ctx.record(_overdue(plan, check_id, (now - started) * 1000, limit))
        for chk in pending.values():
            ctx.record(_overdue(plan, chk.id, 0.0, limit, started=False))
    finally:
        ctx.close()

    results = _attribute(plan, [r for c in plan.checks if (r := ctx.result(c.id)) is not None])
    return Report(
        target=target.as_dict(),
        results=results,
        reachable=ctx.fact(facts.REACHABLE) is True,
        duration_ms=round((time.monotonic() - ctx.started) * 1000, 1),
        load_errors=tuple(load_errors),
    )


def _attribute(plan: _Plan, results: list[CheckResult]) -> tuple[CheckResult, ...]:
    """Mark each failure that another failure explains with `caused_by`, naming the root.

    A check lists in `explained_by` the checks whose failure would explain its own: a
    timeout to the ClusterIP is explained by a missing route or by forwarding that is off.
    The cause may sit anywhere on the path (an NXDOMAIN is explained by a Service the API
    does not have, checked later); when several could explain it, the one nearest the
    client wins. Chains are followed to their root and never loop.
    """
    by_id = {c.id: c for c in plan.checks}
    status = {r.id: r.status for r in results}
    order = [r.id for r in results]
    cause: dict[str, str] = {r.id: r.caused_by for r in results if r.caused_by}
    for r in results:
        # A warning can be a consequence too (kube-dns unreachable behind a broken gateway).
        if r.status not in (Status.FAIL, Status.WARN) or r.id in cause:
            continue
        candidates = [
            c
            for c in order
            if c in by_id[r.id].explained_by and c != r.id and status.get(c) is Status.FAIL
        ]
        for candidate in candidates:
            if not _leads_to(candidate, r.id, cause):
                cause[r.id] = candidate
                break

    def root(check_id: str) -> str:
        seen = {check_id}
        while check_id in cause and cause[check_id] not in seen:
            check_id = cause[check_id]
            seen.add(check_id)
        return check_id

    return tuple(
        replace(r, caused_by=root(r.id)) if r.id in cause and root(r.id) != r.id else r
        for r in results
    )


def _leads_to(start: str, target: str, cause: dict[str, str]) -> bool:
    """True when start is (transitively) caused by target: marking would make a loop."""
    seen = set()
    while start in cause and start not in seen:
        seen.add(start)
        start = cause[start]
        if start == target:
            return True
    return False


def _overdue(
    plan: _Plan, check_id: str, elapsed_ms: float, limit: float, started: bool = True
) -> CheckResult:
    chk = next(c for c in plan.checks if c.id == check_id)
    if started:
        status, summary = Status.ERROR, f"did not finish within the run's deadline of {limit:g} s"
    else:
        status, summary = Status.SKIP, f"not started: the run's deadline of {limit:g} s passed"
    return CheckResult(
        chk.id, chk.hop, status, summary, {"deadline_s": limit}, None, round(elapsed_ms, 1)
    )
