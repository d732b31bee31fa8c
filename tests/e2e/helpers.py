"""Run `k8sreach doctor` from the lab's client namespace, as a user there would."""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from dataclasses import dataclass
from typing import Any

from k8sreach.demo import doctor_argv


@dataclass
class Run:
    code: int
    doc: dict[str, Any]
    stdout: str
    stderr: str
    seconds: float

    def check(self, check_id: str) -> dict[str, Any]:
        return next(c for c in self.doc["checks"] if c["id"] == check_id)

    def statuses(self) -> dict[str, str]:
        return {c["id"]: c["status"] for c in self.doc["checks"]}


def doctor(
    lab,
    *extra: str,
    ssh: bool = True,
    output_json: bool = True,
    target: str | None = None,
    port: bool = True,
    checksum: bool = True,
) -> Run:
    """Run doctor in the client namespace; `target` replaces the lab's Service name."""
    argv = doctor_argv(
        lab, *extra, *(("-o", "json") if output_json else ()), ssh=ssh, checksum=checksum
    )
    if target is not None:
        argv[argv.index(f"{lab.service}.{lab.namespace}")] = target
    if not port:
        at = argv.index("-p")
        del argv[at : at + 2]
    start = time.monotonic()
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    seconds = time.monotonic() - start
    doc = json.loads(out.stdout) if output_json and out.returncode in (0, 1) else {}
    return Run(out.returncode, doc, out.stdout, out.stderr, seconds)


@contextlib.contextmanager
def fault(lab, name: str):
    lab.inject(name)
    try:
        yield
    finally:
        lab.heal()
