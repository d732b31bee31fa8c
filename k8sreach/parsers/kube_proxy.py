"""Classify a `kube-proxy --version` run, and find the binary a systemd unit starts.

A copied binary that dies on a signal with no Go stack trace (a bare `Segmentation
fault`, exit 139 from a shell or -11 from subprocess) is most likely corrupt; a Go panic
or a Go runtime crash prints `goroutine N [...]` frames (and exits 2) and is a code bug,
even when it says SIGSEGV.
"""

from __future__ import annotations

import logging
import re
import shlex
import signal as signal_module
from dataclasses import dataclass

LOG = logging.getLogger(__name__)

_VERSION = re.compile(r"\bKubernetes (v\d+\.\d+\.\d+[^\s]*)")
_GOROUTINE = re.compile(r"^goroutine \d+ \[", re.MULTILINE)
_GO_PANIC = re.compile(r"^(panic: .*|fatal error: .*|SIG[A-Z]+: .*)$", re.MULTILINE)
_GO_SIGNAL = re.compile(r"^\[signal (SIG[A-Z]+)[^\]]*\]$", re.MULTILINE)
_SHELL_SIGNAL = re.compile(
    r"(Segmentation fault|Bus error|Illegal instruction|Floating point exception|Aborted)"
)
# Signals the CPU or the C library raise on bad code or bad bytes; others (KILL, TERM, INT)
# come from outside: the OOM killer, a timeout, an operator.
_CRASH_SIGNALS = frozenset({4, 6, 7, 8, 11, 31})


@dataclass(frozen=True)
class VersionRun:
    """What a `kube-proxy --version` run shows."""

    kind: str  # "ok", "segfault", "go-panic", "killed", or "error"
    version: str | None  # "v1.29.3"
    signal: int | None  # 11 for SIGSEGV, from the exit status or the Go trace
    detail: str  # one line for a person: "exit 139: Segmentation fault (SIGSEGV), no Go trace"


def _signal_of(returncode: int) -> int | None:
    """Return the signal that ended the process: -N (subprocess) or 128+N (a shell)."""
    if returncode < 0:
        return -returncode
    if 128 < returncode < 128 + 65:
        return returncode - 128
    return None


def _signal_name(number: int) -> str:
    """Return "SIGSEGV" for 11, "signal N" when unknown."""
    try:
        return signal_module.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _first_line(text: str) -> str:
    """Return the first non-empty line of text, "" if none."""
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def classify_version_run(returncode: int, stdout: str, stderr: str) -> VersionRun:
    """Return whether `kube-proxy --version` worked, crashed, panicked, was killed or failed."""
    combined = f"{stdout}\n{stderr}"
    version_match = _VERSION.search(stdout) or _VERSION.search(stderr)
    version = version_match.group(1) if version_match else None

    panic = _GO_PANIC.search(combined)
    if returncode != 0 and (_GOROUTINE.search(combined) or panic):
        go_signal = _GO_SIGNAL.search(combined)
        number = None
        if go_signal:
            number = getattr(signal_module, go_signal.group(1), None)
            number = int(number) if number is not None else None
        detail = panic.group(1) if panic else "Go stack trace"
        if go_signal:
            detail += f" [{go_signal.group(0)[1:-1]}]"
        return VersionRun("go-panic", version, number, f"exit {returncode}: {detail}")

    number = _signal_of(returncode)
    if number is not None:
        name = _signal_name(number)
        shell = _SHELL_SIGNAL.search(combined)
        said = f"{shell.group(1)} ({name})" if shell else name
        if number in _CRASH_SIGNALS:
            return VersionRun(
                "segfault", version, number, f"exit {returncode}: {said}, no Go stack trace"
            )
        return VersionRun("killed", version, number, f"exit {returncode}: killed by {said}")

    if returncode == 0 and version:
        return VersionRun("ok", version, None, f"Kubernetes {version}")
    if returncode == 0:
        first = _first_line(stdout) or _first_line(stderr) or "no output"
        return VersionRun("error", None, None, f"exit 0 but no Kubernetes version: {first}")
    first = _first_line(stderr) or _first_line(stdout) or "no output"
    return VersionRun("error", version, None, f"exit {returncode}: {first}")


def _unit_lines(unit_text: str) -> list[tuple[str, str]]:
    """Return (section, logical line) pairs of a unit file, continuations joined."""
    result: list[tuple[str, str]] = []
    section = ""
    pending = ""
    for raw in unit_text.splitlines():
        line = raw.strip()
        if not pending and (not line or line[0] in "#;"):
            continue
        if pending and line and line[0] in "#;":
            continue  # comment lines inside a continuation are skipped
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = (pending + line).strip()
        pending = ""
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        result.append((section, line))
    if pending.strip():
        result.append((section, pending.strip()))
    return result


def _show_format_path(value: str) -> str | None:
    """Return path= of `systemctl show -p ExecStart` output ("{ path=/usr/bin/x ; ... }")."""
    match = re.search(r"\bpath=([^ ;]+)", value)
    return match.group(1) if match else None


def execstart_argv(unit_text: str) -> tuple[str, ...]:
    """Return the argv of the ExecStart= that applies (last non-empty after a reset)."""
    command = ""
    for section, line in _unit_lines(unit_text):
        if section not in ("Service", "") or not line.startswith("ExecStart"):
            continue
        name, sep, value = line.partition("=")
        if not sep or name.strip() != "ExecStart":
            continue
        value = value.strip()
        if not value:
            command = ""  # `ExecStart=` resets the list (drop-in overrides)
            continue
        command = value
    if not command:
        return ()
    if command.startswith("{") and "path=" in command:
        path = _show_format_path(command)
        return (path,) if path else ()
    # Prefixes: @ (argv[0] follows separately), - (ignore failure), :, +, ! and !!.
    stripped = command.lstrip("@-:+!").strip()
    try:
        argv = shlex.split(stripped)
    except ValueError:
        LOG.debug("unbalanced quotes in ExecStart=%s", command)
        argv = stripped.split()
    return tuple(argv)


def parse_systemd_execstart(unit_text: str) -> str | None:
    """Return the program path a unit's ExecStart= runs, None if it has none."""
    argv = execstart_argv(unit_text)
    return argv[0] if argv else None
