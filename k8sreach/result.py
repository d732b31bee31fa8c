"""Records a run produces: statuses, hops, one check's finding and the whole report."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Status(enum.StrEnum):
    """Outcome of one check, as written in the table and in JSON."""

    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"
    ERROR = "error"

    def __str__(self) -> str:
        return self.value


class Hop(enum.StrEnum):
    """Where along the path from the client to the pod a check looks, in path order."""

    CLIENT = "client"
    DNS = "dns"
    GATEWAY = "gateway"
    CLUSTER = "cluster"
    SERVICE = "service"

    def __str__(self) -> str:
        return self.value

    @property
    def position(self) -> int:
        return list(Hop).index(self)


@dataclass(frozen=True)
class Finding:
    """What a check's run() returns; the runner adds id, hop and duration.

    `facts` are values later checks may use (an address, a port); they are not printed.
    """

    status: Status
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)
    remediation: str | None = None
    address: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    caused_by: str | None = None


def passed(summary: str, **kw: Any) -> Finding:
    return Finding(Status.PASS, summary, **kw)


def warned(summary: str, **kw: Any) -> Finding:
    return Finding(Status.WARN, summary, **kw)


def failed(summary: str, **kw: Any) -> Finding:
    return Finding(Status.FAIL, summary, **kw)


def skipped(summary: str, **kw: Any) -> Finding:
    return Finding(Status.SKIP, summary, **kw)


@dataclass(frozen=True)
class CheckResult:
    """One row of the chain: a finding with the check's identity and timing."""

    id: str
    hop: Hop
    status: Status
    summary: str
    evidence: dict[str, Any]
    remediation: str | None
    duration_ms: float
    address: str | None = None
    caused_by: str | None = None


@dataclass(frozen=True)
class Report:
    """The whole chain for one target."""

    target: dict[str, Any]
    results: tuple[CheckResult, ...]
    reachable: bool
    duration_ms: float
    load_errors: tuple[str, ...] = ()

    @property
    def first_failure(self) -> CheckResult | None:
        """The earliest failure on the path that no other failure explains: the root cause."""
        failures = [r for r in self.results if r.status is Status.FAIL]
        return next((r for r in failures if not r.caused_by), failures[0] if failures else None)

    @property
    def exit_code(self) -> int:
        """0 no check failed, 1 a check failed, 3 the tool itself failed (a check crashed)."""
        if any(r.status is Status.FAIL for r in self.results):
            return 1
        if self.load_errors or any(r.status is Status.ERROR for r in self.results):
            return 3
        return 0
