"""Running commands and daemons for the lab, and bounded waits on what they do."""

from __future__ import annotations

import ipaddress
import logging
import os
import select
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

LOG = logging.getLogger(__name__)

# /proc/net/{tcp,udp} socket states: TCP_LISTEN is 0A; an unconnected UDP socket shows 07.
_LISTEN_STATE = {"tcp": "0A", "udp": "07"}


class LabError(RuntimeError):
    """The lab could not be built, changed or torn down; the message says what and why."""


def netns_argv(ns: str, argv: Sequence[str]) -> list[str]:
    """Return argv wrapped to run inside network namespace ``ns``."""
    return ["ip", "netns", "exec", ns, *argv]


def run(
    argv: Sequence[str], *, timeout: float = 10, input: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run a command to completion and return it; with check, a failure raises LabError."""
    LOG.debug("run %s", " ".join(argv))
    try:
        proc = subprocess.run(
            list(argv),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"{' '.join(argv)!r} did not finish within {timeout} s") from exc
    except OSError as exc:
        raise LabError(f"cannot run {' '.join(argv)!r}: {exc}") from exc
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip()
        raise LabError(f"{' '.join(argv)!r} failed with exit {proc.returncode}: {detail}")
    return proc


def run_all(commands: Sequence[tuple[Sequence[str], str | None]], timeout: float = 10) -> None:
    """Run independent commands in parallel (argv, stdin text); any failure raises LabError."""
    started = []
    for argv, text in commands:
        LOG.debug("run %s", " ".join(argv))
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE if text is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append((argv, text, proc))
    failures = []
    for argv, text, proc in started:
        try:
            _, err = proc.communicate(text, timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            failures.append(f"{' '.join(argv)!r} did not finish within {timeout} s")
            continue
        if proc.returncode != 0:
            failures.append(f"{' '.join(argv)!r} failed ({proc.returncode}): {err.strip()}")
    if failures:
        raise LabError("; ".join(failures))


def spawn(argv: Sequence[str], log: Path, *, ready_pipe: bool = False) -> subprocess.Popen[bytes]:
    """Start a daemon in its own session with output to ``log``; return its process."""
    LOG.debug("spawn %s", " ".join(argv))
    with open(log, "ab") as out:
        try:
            return subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if ready_pipe else out,
                stderr=out,
                start_new_session=True,
            )
        except OSError as exc:
            raise LabError(f"cannot start {' '.join(argv)!r}: {exc}") from exc


def read_ready(proc: subprocess.Popen[bytes], what: str, timeout: float, log: Path) -> None:
    """Wait until ``proc`` prints its ready line on stdout; raise LabError if it does not."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    buf = b""
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0 or proc.poll() is not None:
            break
        readable, _, _ = select.select([proc.stdout], [], [], left)
        if readable:
            chunk = os.read(proc.stdout.fileno(), 256)
            if not chunk:
                break
            buf += chunk
    proc.stdout.close()
    if not buf.startswith(b"ready"):
        raise LabError(f"{what} did not start within {timeout} s: {log_tail(log)}")


def wait_until(
    check: Callable[[], bool], what: str, timeout: float, log: Path | None = None
) -> None:
    """Poll ``check`` until it is true; raise LabError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        if check():
            return
        if time.monotonic() >= deadline:
            detail = f": {log_tail(log)}" if log else ""
            raise LabError(f"timed out after {timeout} s waiting for {what}{detail}")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.1)


def listening(pid: int, proto: str, ip: str, port: int) -> bool:
    """Return whether a socket in ``pid``'s network namespace listens on ip:port."""
    want = f"{int(ipaddress.IPv4Address(ip).packed[::-1].hex(), 16):08X}:{port:04X}"
    try:
        table = Path(f"/proc/{pid}/net/{proto}").read_text()
    except OSError:
        return False
    for line in table.splitlines()[1:]:
        fields = line.split()
        if fields[1] == want and fields[3] == _LISTEN_STATE[proto]:
            return True
    return False


def stop(proc: subprocess.Popen[bytes], timeout: float = 2.0) -> None:
    """Terminate a daemon's process group, kill it if it lingers, and reap it."""
    if proc.poll() is not None:
        return
    _signal_group(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        _signal_group(proc.pid, signal.SIGKILL)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            LOG.warning("process %d did not exit after SIGKILL", proc.pid)


def _signal_group(pid: int, sig: int) -> None:
    """Send ``sig`` to the process group led by ``pid`` (our own daemons lead their groups)."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        LOG.warning("not allowed to signal process group %d", pid)


def kill_pids(pids: Sequence[int]) -> None:
    """Send SIGKILL to each pid, ignoring those already gone."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def log_tail(log: Path | None, lines: int = 8) -> str:
    """Return the last lines of a daemon's log, for error messages."""
    if log is None:
        return ""
    try:
        text = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return f"(no log at {log})"
    return " | ".join(text[-lines:]) or f"(empty log {log})"
