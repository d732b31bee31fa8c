"""Read-only access to the gateway: run fixed programs locally or over one OpenSSH connection."""

from __future__ import annotations

import errno
import logging
import math
import os
import re
import selectors
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, Self, runtime_checkable

LOG = logging.getLogger(__name__)

ACCESS_ERROR_KINDS = frozenset(
    {"unreachable", "refused", "timeout", "auth", "hostkey", "config", "other"}
)

# sshd allows 10 sessions per connection by default (MaxSessions); stay below it so a few
# sessions still closing on the server never make a new one fail.
MAX_PARALLEL_SESSIONS = 8

# Authentication is not covered by ssh's ConnectTimeout; this bounds the rest of the login.
_LOGIN_SLACK = 5.0
_SERVER_ALIVE_INTERVAL = 5
_SERVER_ALIVE_COUNT = 3
_CLOSE_WAIT = 2.0
_DRAIN_WAIT = 0.1

# Options k8sreach sets itself; a user value would break the connection sharing, the
# no-prompt guarantee or the parsing of ssh's messages, so it is refused with a reason.
_FORCED_OPTIONS = {
    "batchmode": "k8sreach never prompts, BatchMode is always yes",
    "controlmaster": "k8sreach runs its own ssh master connection",
    "controlpath": "k8sreach keeps its control socket in a private directory",
    "controlpersist": "k8sreach stops its master connection itself",
    "loglevel": "use --verbose to see what ssh does",
    "connecttimeout": "k8sreach derives it from its own timeout",
    "clearallforwardings": "k8sreach never opens port forwardings",
    "remotecommand": "k8sreach chooses the commands it runs",
    "requesttty": "k8sreach never needs a terminal on the gateway",
    "forwardagent": "k8sreach never forwards the agent to the gateway",
    "forwardx11": "k8sreach never forwards X11",
}
_OPTION_KEY = re.compile(r"[A-Za-z][A-Za-z0-9]*")
# ssh splits ControlPath on blanks and expands %-tokens in it, and a socket path must stay short.
_SAFE_SOCKET_DIR = re.compile(r"[A-Za-z0-9/._-]{1,80}")
_MISSING_FILE = (": No such file or directory", ": Not a directory")


@dataclass(frozen=True)
class CommandResult:
    """What one command printed and how it ended; returncode None means it was cut at timeout."""

    argv: tuple[str, ...]
    returncode: int | None
    stdout: bytes
    stderr: bytes
    duration_ms: float
    timed_out: bool

    @property
    def text(self) -> str:
        """Standard output decoded as UTF-8, undecodable bytes replaced."""
        return self.stdout.decode("utf-8", "replace")

    @property
    def err_text(self) -> str:
        """Standard error decoded as UTF-8, undecodable bytes replaced."""
        return self.stderr.decode("utf-8", "replace")


class AccessError(Exception):
    """The gateway could not be reached or used; `message` says what was tried and what to do."""

    def __init__(self, kind: str, message: str, detail: str = "") -> None:
        if kind not in ACCESS_ERROR_KINDS:
            raise ValueError(f"unknown AccessError kind {kind!r}")
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.detail = detail


@runtime_checkable
class Host(Protocol):
    """Something commands can be run on, for reading only."""

    label: str

    def run(
        self, argv: Sequence[str], timeout: float, input: bytes | None = None
    ) -> CommandResult: ...

    def read_file(self, path: str, timeout: float, max_bytes: int = 1 << 20) -> bytes | None: ...

    def glob(self, pattern_dir: str, suffix: str, timeout: float) -> list[str]: ...

    def close(self) -> None: ...


# Argument checks and command strings ----------------------------------------------------


def _check_argv(argv: Sequence[str]) -> tuple[str, ...]:
    """Return argv as a tuple after refusing what no program could receive intact."""
    if isinstance(argv, str):
        raise TypeError("argv must be a sequence of arguments, not one string")
    args = tuple(argv)
    if not args or not args[0]:
        raise ValueError("argv needs a program name")
    # env(1) runs argv[0]; a name with '=' would be taken as a variable, '-' as an option.
    if "=" in args[0] or args[0].startswith("-"):
        raise ValueError(f"not a program name: {args[0]!r}")
    for arg in args:
        if not isinstance(arg, str):
            raise TypeError(f"argument {arg!r} is not a string")
        if "\0" in arg:
            raise ValueError(f"argument {arg!r} contains a NUL byte")
    return args


def remote_command(argv: Sequence[str], kill_after: int | None = None) -> str:
    """Return the one string ssh sends for argv: quoted for the gateway's POSIX login shell."""
    # sshd hands the string to `$SHELL -c`, so every argument must be quoted; the C locale
    # keeps messages like "No such file or directory" parseable whatever LANG ssh forwards.
    prefix = ["env", "LC_ALL=C"]
    if kill_after is not None:
        # Killing the local ssh client leaves the program running on the gateway, holding
        # one of sshd's sessions; timeout(1) there ends it too.
        prefix += ["timeout", "-s", "KILL", str(kill_after)]
    return shlex.join((*prefix, *_check_argv(argv)))


def parse_ssh_option(text: str) -> tuple[str, str]:
    """Return (KEY, VALUE) from an ssh option written KEY=VALUE, as for `ssh -o`."""
    key, sep, value = text.partition("=")
    if not sep:
        raise AccessError(
            "config", f"ssh option {text!r} is not KEY=VALUE; write it like Port=2222"
        )
    _check_option(key, value)
    return key, value


def _check_option(key: str, value: str) -> None:
    """Raise AccessError(config) unless KEY=VALUE can be passed to ssh -o unchanged."""
    if not _OPTION_KEY.fullmatch(key):
        raise AccessError(
            "config", f"ssh option name {key!r} is not an ssh keyword (letters and digits only)"
        )
    reason = _FORCED_OPTIONS.get(key.lower())
    if key.lower() == "batchmode" and value.lower() == "yes":
        reason = None  # what k8sreach sets anyway: harmless, and common in users' configs
    if reason is not None:
        raise AccessError("config", f"ssh option {key} cannot be set: {reason}")
    if not value or any(ch in value for ch in "\r\n\0"):
        raise AccessError("config", f"ssh option {key} needs a value on one line, e.g. {key}=VALUE")


def _check_dest(dest: str) -> None:
    """Raise AccessError(config) unless dest is one ssh destination and not an option."""
    if not dest or dest.startswith("-") or any(ch.isspace() or ch == "\0" for ch in dest):
        raise AccessError(
            "config",
            f"ssh destination {dest!r} is not valid; give [user@]host or an alias from "
            "~/.ssh/config",
        )


def _fnmatch_escape(text: str) -> str:
    """Return text with find -name wildcards escaped so it matches literally."""
    return re.sub(r"([\\*?\[])", r"\\\1", text)


def _glob_argv(pattern_dir: str, suffix: str) -> list[str]:
    """Return the find command listing pattern_dir's entries whose names end with suffix."""
    if not pattern_dir.startswith("/"):
        raise ValueError(f"glob needs an absolute directory, not {pattern_dir!r}")
    # The trailing slash makes a symlinked directory (common for /etc/*.d) be followed.
    start = pattern_dir.rstrip("/") + "/"
    pattern = "*" + _fnmatch_escape(suffix)
    return ["find", start, "-mindepth", "1", "-maxdepth", "1", "-name", pattern, "-print0"]


def _missing(stderr: str) -> bool:
    """Return whether a tool's last message says the path does not exist."""
    lines = stderr.strip().splitlines()
    return bool(lines) and lines[-1].rstrip(".").endswith(_MISSING_FILE)


def _last_line(text: str) -> str:
    """Return the last non-empty line of text, or '' when there is none."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


# Classifying ssh's own messages ---------------------------------------------------------

# First match wins: an auth failure may be preceded by a warning about the identity file.
_SSH_ERROR_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "hostkey",
        re.compile(
            r"Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED"
            r"|host key .* has changed",
            re.I,
        ),
    ),
    ("auth", re.compile(r"Permission denied \(|Too many authentication failures", re.I)),
    (
        "config",
        re.compile(
            r"Could not resolve hostname|Bad configuration option|command-line: line \d+"
            r"|Unable to negotiate with|Unsupported option|no argument after keyword"
            r"|Bad port|ssh: not found",
            re.I,
        ),
    ),
    (
        "refused",
        re.compile(
            r"Connection refused|Connection closed by remote host|Connection reset by peer"
            r"|kex_exchange_identification: (?:read: )?Connection",
            re.I,
        ),
    ),
    ("timeout", re.compile(r"timed out|Timeout, server .* not responding", re.I)),
    (
        "unreachable",
        re.compile(r"No route to host|Network is unreachable|Host is unreachable", re.I),
    ),
    (
        "other",
        re.compile(r"Session open refused by peer|administratively prohibited", re.I),
    ),
)


def _classify(stderr: str) -> tuple[str, str] | None:
    """Return (kind, the line that shows it) for ssh's messages, or None if none is known."""
    lines = [
        line.strip()
        for line in stderr.replace("\r\n", "\n").splitlines()
        if line.strip() and not line.startswith(_PROGRESS_LINES)
    ]
    for kind, pattern in _SSH_ERROR_PATTERNS:
        for line in lines:
            if pattern.search(line):
                return kind, line
    return None


def classify_ssh_error(stderr: str) -> str | None:
    """Return the AccessError kind ssh's messages point to, or None when none is recognised."""
    found = _classify(stderr)
    return found[0] if found else None


def _access_error(dest: str, stderr: str, waited: float) -> AccessError:
    """Return the AccessError a user can act on for ssh's stderr when reaching dest failed."""
    # ssh ends some messages with CRLF; debug lines are for the verbose log, not the error.
    detail = _without_debug(stderr)
    kind, said = _classify(detail) or ("other", _last_line(detail))
    said = said.rstrip(".")
    tried = f"ssh {dest}"
    advice = {
        "refused": (
            f"{tried}: the gateway refused the connection ({said}); check that sshd runs "
            "there and the port is right (Port in ~/.ssh/config or ssh option Port=N)"
        ),
        "timeout": (
            f"{tried}: no SSH answer within {waited:.3g} s ({said}); check the address, that "
            "nothing filters the SSH port, or allow a longer timeout"
        ),
        "unreachable": (
            f"{tried}: the gateway is unreachable from here ({said}); check the address "
            "and this machine's route to it"
        ),
        "auth": (
            f"{tried}: authentication failed ({said}); k8sreach never asks for a password: "
            "give the private key (--ssh-identity) or load it into ssh-agent"
        ),
        "hostkey": (
            f"{tried}: the gateway's host key is unknown or has changed; verify it and add "
            f"it to ~/.ssh/known_hosts (run `ssh {dest}` once), or pass the ssh option "
            "StrictHostKeyChecking=accept-new to trust a first-seen key"
        ),
        "config": f"{tried}: ssh rejected the setup ({said}); fix the destination or options",
        "other": f"{tried} failed ({said or 'no message from ssh'}); run with --verbose",
    }[kind]
    return AccessError(kind, advice, detail=detail)


# What the master prints at LogLevel DEBUG1 besides errors: progress, not a reason to fail.
_PROGRESS_LINES = (
    "debug",
    "Authenticated to ",
    "Transferred: ",
    "Bytes per second: ",
    "Warning: Permanently added ",
)


def _without_debug(stderr: str) -> str:
    """Return ssh's messages without its debug and progress lines (for the verbose log)."""
    return "\n".join(
        line.rstrip("\r") for line in stderr.splitlines() if not line.startswith(_PROGRESS_LINES)
    ).strip()


def _cut_login_message(dest: str, limit: float, stderr: str) -> str:
    """Return why a login k8sreach cut at its deadline did not finish, as far as ssh's
    debug lines tell: the port never answered, no SSH greeting, or an unfinished login."""
    tried = f"ssh {dest}: no SSH session within {limit:g} s"
    # Behind a ProxyCommand or ProxyJump the progress lines may be the jump host's.
    direct = "debug1: Executing proxy" not in stderr
    if direct and "debug1: Remote protocol version" in stderr:
        return (
            f"{tried}: the server answered but the key exchange or authentication did not "
            "finish; check sshd on the gateway (its logs, a slow PAM or DNS lookup) or allow "
            "a longer timeout"
        )
    if direct and "debug1: Connection established." in stderr:
        return (
            f"{tried}: the TCP connection was accepted but no SSH greeting came back; check "
            "that sshd (not something else) listens on that port and is not overloaded"
        )
    if direct and "debug1: Connecting to " in stderr:
        return (
            f"{tried}: the SSH port does not answer (packets filtered or dropped on the "
            "way); check the address and port, and that no firewall drops SSH to the "
            "gateway, or allow a longer timeout"
        )
    return (
        f"{tried}: the port does not answer (filtered or dropped) or the server did not "
        "finish the handshake; check the address, firewalls on the way and sshd on the "
        "gateway, or allow a longer timeout"
    )


# Running processes ----------------------------------------------------------------------


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill proc and everything it started in its own session."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


class _Pipes:
    """Feeds a child's stdin and collects its stdout and stderr without blocking past a deadline."""

    def __init__(self, proc: subprocess.Popen[bytes], input: bytes | None) -> None:
        self._selector = selectors.DefaultSelector()
        self._input = memoryview(input or b"")
        self._sent = 0
        self.chunks: dict[int, list[bytes]] = {}
        for pipe in (proc.stdout, proc.stderr):
            assert pipe is not None
            self.chunks[pipe.fileno()] = []
            self._selector.register(pipe, selectors.EVENT_READ)
        if proc.stdin is not None:
            if self._input:
                self._selector.register(proc.stdin, selectors.EVENT_WRITE)
            else:
                proc.stdin.close()
        self._files = [f for f in (proc.stdin, proc.stdout, proc.stderr) if f is not None]

    def pump(self, deadline: float) -> bool:
        """Move data until every pipe is closed (True) or the deadline passes (False)."""
        while self._selector.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            for key, _ in self._selector.select(left):
                fd = key.fd
                if fd in self.chunks:
                    data = os.read(fd, 1 << 16)
                    if data:
                        self.chunks[fd].append(data)
                        continue
                else:
                    try:
                        self._sent += os.write(fd, self._input[self._sent : self._sent + 4096])
                    except BrokenPipeError:
                        self._sent = len(self._input)
                    if self._sent < len(self._input):
                        continue
                self._selector.unregister(key.fileobj)
                key.fileobj.close()  # type: ignore[union-attr]
        return True

    def close(self) -> None:
        self._selector.close()
        for fileobj in self._files:
            fileobj.close()


def _run_process(
    cmd: Sequence[str],
    argv: tuple[str, ...],
    timeout: float,
    input: bytes | None,
    env: Mapping[str, str] | None = None,
) -> CommandResult:
    """Run cmd (never through a shell) and return its result, killing it at timeout."""
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            list(cmd),
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=None if env is None else dict(env),
            # Its own session, so a timeout kills the program's children as well.
            start_new_session=True,
        )
    except OSError as exc:
        # The answer a shell gives when exec fails, so both hosts read alike: 127 when there
        # is no such program, 126 when there is one that cannot run (not executable, a
        # directory, a binary for another architecture).
        return _exec_failure(cmd[0], argv, exc, (time.monotonic() - start) * 1000)

    out_fd = proc.stdout.fileno() if proc.stdout else -1
    err_fd = proc.stderr.fileno() if proc.stderr else -1
    pipes = _Pipes(proc, input)
    try:
        finished = pipes.pump(start + timeout) and _wait(proc, start + timeout)
        if not finished:
            _kill_group(proc)
            # An ssh client hands its pipes to the master, so they may stay open after the
            # kill: keep only what is already written.
            pipes.pump(time.monotonic() + _DRAIN_WAIT)
    finally:
        pipes.close()
        if proc.poll() is None:
            _kill_group(proc)
        proc.wait(_CLOSE_WAIT)
    stdout = b"".join(pipes.chunks[out_fd])
    stderr = b"".join(pipes.chunks[err_fd])
    returncode = proc.returncode if finished else None
    duration_ms = (time.monotonic() - start) * 1000
    return CommandResult(argv, returncode, stdout, stderr, duration_ms, not finished)


def _exec_failure(
    program: str, argv: tuple[str, ...], exc: OSError, duration_ms: float
) -> CommandResult:
    """Return the result of a program that could not be started, as a shell reports it."""
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        # a bare name is looked up on PATH; a path names one file that is not there
        said = "No such file or directory" if "/" in program else "command not found"
        code = 127
    else:
        said = exc.strerror or str(exc)
        code = 126
    msg = f"k8sreach: {program}: {said}\n".encode()
    return CommandResult(argv, code, b"", msg, duration_ms, False)


def _wait(proc: subprocess.Popen[bytes], deadline: float) -> bool:
    """Return whether proc exited before the deadline."""
    try:
        proc.wait(max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        return False
    return True


def _log_result(label: str, result: CommandResult) -> None:
    """Log a one-line summary of a command's answer at DEBUG."""
    if not LOG.isEnabledFor(logging.DEBUG):
        return
    ending = "timed out" if result.timed_out else f"rc={result.returncode}"
    said = _last_line(result.err_text) if result.returncode else ""
    LOG.debug(
        "%s: %s -> %s, stdout %d B, stderr %d B, %.1f ms%s",
        label,
        result.argv[0],
        ending,
        len(result.stdout),
        len(result.stderr),
        result.duration_ms,
        f" ({said})" if said else "",
    )


class _CommandHost:
    """read_file and glob built on run(), so both kinds of host answer the same way."""

    label: str

    def run(self, argv: Sequence[str], timeout: float, input: bytes | None = None) -> CommandResult:
        raise NotImplementedError

    def read_file(self, path: str, timeout: float, max_bytes: int = 1 << 20) -> bytes | None:
        """Return up to max_bytes of the file at path, or None when it does not exist."""
        if not path:
            raise ValueError("read_file needs a path")
        if max_bytes < 0:
            raise ValueError("max_bytes must not be negative")
        result = self.run(["head", "-c", str(max_bytes), "--", path], timeout)
        if result.returncode == 0:
            return result.stdout
        if result.timed_out:
            raise AccessError(
                "timeout", f"reading {path} on {self.label} took longer than {timeout:g} s"
            )
        if _missing(result.err_text):
            return None
        raise AccessError(
            "other",
            f"reading {path} on {self.label} failed: {_last_line(result.err_text)}",
            detail=result.err_text.strip(),
        )

    def glob(self, pattern_dir: str, suffix: str, timeout: float) -> list[str]:
        """Return the sorted paths in pattern_dir whose names end with suffix ([] if no dir)."""
        result = self.run(_glob_argv(pattern_dir, suffix), timeout)
        if result.timed_out:
            raise AccessError(
                "timeout", f"listing {pattern_dir} on {self.label} took longer than {timeout:g} s"
            )
        if result.returncode != 0:
            if _missing(result.err_text):
                return []
            raise AccessError(
                "other",
                f"listing {pattern_dir} on {self.label} failed: {_last_line(result.err_text)}",
                detail=result.err_text.strip(),
            )
        base = pattern_dir.rstrip("/")
        names = {os.path.basename(p) for p in result.text.split("\0") if p}
        return sorted(f"{base}/{name}" for name in names)

    def close(self) -> None:
        """Release what the host holds."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LocalHost(_CommandHost):
    """The machine k8sreach runs on, for --on-gateway; programs run directly, never a shell."""

    def __init__(self) -> None:
        self.label = "gateway (local)"

    def run(self, argv: Sequence[str], timeout: float, input: bytes | None = None) -> CommandResult:
        """Run argv here and return what it printed; cut it at timeout."""
        args = _check_argv(argv)
        LOG.debug("%s: run %s (timeout %g s)", self.label, shlex.join(args), timeout)
        env = dict(os.environ, LC_ALL="C")
        result = _run_process(args, args, timeout, input, env)
        _log_result(self.label, result)
        return result


# OpenSSH --------------------------------------------------------------------------------


class _Master:
    """One `ssh -M -N` process and its private directory; stop() is safe to call twice."""

    def __init__(self, ssh: str, dest: str, directory: str) -> None:
        self.ssh = ssh
        self.dest = dest
        self.directory = directory
        self.socket = os.path.join(directory, "cm")
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = os.path.join(directory, "master.log")
        self.log_offset = 0
        self._stopped = False

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None and not self._stopped

    def messages(self) -> str:
        """Return what the master wrote to its log since it started."""
        return _read_from(self.log_path, self.log_offset)

    def stop(self) -> None:
        """Ask the master to exit, kill it if it does not, and remove the private directory."""
        if self._stopped:
            return
        self._stopped = True
        try:
            if self.proc is not None and self.proc.poll() is None:
                if os.path.exists(self.socket):
                    try:
                        subprocess.run(
                            [self.ssh, "-S", self.socket, "-O", "exit", self.dest],
                            stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL,
                            timeout=_CLOSE_WAIT,
                            check=False,
                        )
                    except (OSError, subprocess.TimeoutExpired):
                        LOG.debug("ssh -O exit for %s did not finish", self.dest)
                try:
                    self.proc.wait(_CLOSE_WAIT)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(_CLOSE_WAIT)
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)


def _private_dir() -> str:
    """Return a new 0700 directory whose path ssh accepts as a ControlPath prefix."""
    base = tempfile.gettempdir()
    if not _SAFE_SOCKET_DIR.fullmatch(base):
        base = "/tmp"
    return tempfile.mkdtemp(prefix="k8sreach-ssh-", dir=base)


class SshHost(_CommandHost):
    """The gateway over the system OpenSSH client: one master connection, many sessions."""

    def __init__(
        self,
        dest: str,
        identity: str | None = None,
        options: Mapping[str, str] | None = None,
        connect_timeout: float = 2.0,
        verbose_log: str | os.PathLike[str] | None = None,
    ) -> None:
        _check_dest(dest)
        for key, value in (options or {}).items():
            _check_option(key, value)
        if identity is not None:
            if "\n" in identity or "\0" in identity:
                raise AccessError("config", f"identity file name {identity!r} is not valid")
            if not os.path.isfile(os.path.expanduser(identity)):
                raise AccessError(
                    "config", f"identity file {identity} not found; give an existing private key"
                )
        if connect_timeout <= 0:
            raise ValueError("connect_timeout must be positive")
        self.dest = dest
        self.identity = identity
        self.options = dict(options or {})
        self.connect_timeout = connect_timeout
        self.verbose_log = verbose_log
        self.label = f"gateway ({dest})"
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(MAX_PARALLEL_SESSIONS)
        self._master: _Master | None = None
        self._finalizer: weakref.finalize[[], SshHost] | None = None
        self._closed = False
        self._has_timeout: bool | None = None  # whether the gateway has timeout(1)

    @property
    def control_dir(self) -> str | None:
        """The private directory holding the control socket while connected."""
        master = self._master
        return master.directory if master is not None and master.alive() else None

    def _ssh_options(self, control_master: str, socket: str, log_level: str) -> list[str]:
        """Return the ssh options for one invocation: forced first, as ssh keeps the first."""
        forced = {
            "BatchMode": "yes",
            "ControlMaster": control_master,
            "ControlPath": socket,
            "ControlPersist": "no",
            "LogLevel": log_level,
            "ClearAllForwardings": "yes",
            "RemoteCommand": "none",
            "RequestTTY": "no",
            "ForwardAgent": "no",
            "ForwardX11": "no",
        }
        defaults = {
            "ConnectTimeout": str(max(1, math.ceil(self.connect_timeout))),
            "ServerAliveInterval": str(_SERVER_ALIVE_INTERVAL),
            "ServerAliveCountMax": str(_SERVER_ALIVE_COUNT),
        }
        args: list[str] = []
        for key, value in [*forced.items(), *self.options.items(), *defaults.items()]:
            args += ["-o", f"{key}={value}"]
        if self.identity is not None:
            args += ["-i", self.identity]
        return args

    def connect(self, timeout: float | None = None) -> None:
        """Open the master connection; the login must finish within timeout (AccessError)."""
        with self._lock:
            self._connect_locked(timeout)

    def _connect_locked(self, timeout: float | None) -> None:
        if self._closed:
            raise AccessError("other", f"{self.label}: the connection was already closed")
        if self._master is not None and self._master.alive():
            return
        if self._master is not None:
            LOG.debug("%s: master connection ended, connecting again", self.label)
            self._stop_master()
        ssh = shutil.which("ssh")
        if ssh is None:
            raise AccessError(
                "config", "the OpenSSH client `ssh` is not installed; install openssh-client"
            )
        limit = timeout if timeout is not None else self.connect_timeout + _LOGIN_SLACK
        master = _Master(ssh, self.dest, _private_dir())
        self._master = master
        self._finalizer = weakref.finalize(self, master.stop)
        deadline = time.monotonic() + limit
        try:
            self._start_master(master, limit)
            if self._has_timeout is None:
                left = max(0.5, deadline - time.monotonic())
                self._has_timeout = self._probe_timeout_tool(master, left)
        except BaseException:
            self._stop_master()
            raise

    def _start_master(self, master: _Master, limit: float) -> None:
        """Start the master and wait until its control socket exists or it gives up."""
        # DEBUG1 always: when the login is cut at the deadline, ssh's progress lines tell a
        # port that never answers from a server that answers but never finishes.
        cmd = [master.ssh, "-N", *self._ssh_options("yes", master.socket, "DEBUG1"), self.dest]
        if self.verbose_log is not None:
            master.log_path = os.fspath(self.verbose_log)
        LOG.debug("%s: connect: %s", self.label, shlex.join(cmd))
        start = time.monotonic()
        try:
            with open(master.log_path, "ab") as log:
                master.log_offset = log.tell()
                master.proc = subprocess.Popen(
                    cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log
                )
        except OSError as exc:
            raise AccessError(
                "config", f"cannot start ssh with its log in {master.log_path}: {exc}"
            ) from exc
        failure: str | None = None
        pause = 0.005
        while True:
            elapsed = time.monotonic() - start
            if master.proc.poll() is not None:
                failure = "exited"
                break
            # The socket appears (by atomic rename) only once authentication succeeded.
            if os.path.exists(master.socket):
                break
            if elapsed >= limit:
                failure = "deadline"
                break
            time.sleep(min(pause, max(0.0, limit - elapsed)))
            pause = min(pause * 2, 0.05)
        elapsed = time.monotonic() - start
        if failure is None:
            LOG.debug("%s: master connection ready in %.1f ms", self.label, elapsed * 1000)
            return

        if failure == "deadline":
            master.proc.kill()
            master.proc.wait(_CLOSE_WAIT)
        stderr = master.messages()
        LOG.debug(
            "%s: master connection failed after %.1f ms: %s",
            self.label,
            elapsed * 1000,
            _without_debug(stderr) or "(no message)",
        )
        if failure == "deadline" and classify_ssh_error(stderr) is None:
            raise AccessError(
                "timeout",
                _cut_login_message(self.dest, limit, stderr),
                detail=_without_debug(stderr),
            )
        # ssh gives up by itself after ConnectTimeout; the deadline bounds the rest.
        waited = limit if failure == "deadline" else max(1, math.ceil(self.connect_timeout))
        raise _access_error(self.dest, stderr, waited)

    def _probe_timeout_tool(self, master: _Master, limit: float) -> bool:
        """Return whether timeout(1) works on the gateway, so hung programs end there too."""
        cmd = [
            master.ssh,
            *self._ssh_options("no", master.socket, "ERROR"),
            self.dest,
            "--",
            remote_command(["true"], kill_after=max(2, math.ceil(limit))),
        ]
        result = _run_process(cmd, ("timeout", "true"), limit, None)
        if result.returncode != 0:
            # Known shortcoming: without timeout(1) a command cut at its timeout keeps
            # running on the gateway until it ends by itself.
            LOG.debug(
                "%s: no usable timeout(1) on the gateway (%s); hung commands are only cut here",
                self.label,
                _last_line(result.err_text) or f"rc={result.returncode}",
            )
        return result.returncode == 0

    def _stop_master(self) -> None:
        if self._finalizer is not None:
            self._finalizer()  # runs master.stop once, also when called again at exit
            self._finalizer = None
        self._master = None

    def run(self, argv: Sequence[str], timeout: float, input: bytes | None = None) -> CommandResult:
        """Run argv on the gateway over the master connection; cut it at timeout."""
        args = _check_argv(argv)
        with self._lock:
            self._connect_locked(None)
            master = self._master
            assert master is not None
        LOG.debug("%s: run %s (timeout %g s)", self.label, shlex.join(args), timeout)
        start = time.monotonic()
        if not self._slots.acquire(timeout=max(0.0, timeout)):
            msg = f"k8sreach: no free SSH session within {timeout:g} s\n".encode()
            result = CommandResult(args, None, b"", msg, (time.monotonic() - start) * 1000, True)
            _log_result(self.label, result)
            return result
        try:
            cmd = [
                master.ssh,
                *self._ssh_options("no", master.socket, "ERROR"),
                self.dest,
                "--",
                remote_command(
                    args, kill_after=math.ceil(timeout) + 1 if self._has_timeout else None
                ),
            ]
            left = timeout - (time.monotonic() - start)
            result = _run_process(cmd, args, left, input)
        finally:
            self._slots.release()
        result = _with_total_time(result, start)
        _log_result(self.label, result)
        # 255 is ssh's own failure; a remote program rarely exits with it, so only a message
        # ssh is known to print turns it into an AccessError.
        if result.returncode == 255:
            if not master.alive():
                # The connection itself ended (gateway gone, keepalives unanswered): the
                # master's log says why.
                raise _access_error(self.dest, master.messages() + result.err_text, timeout)
            if classify_ssh_error(result.err_text) is not None:
                raise _access_error(self.dest, result.err_text, timeout)
        return result

    def close(self) -> None:
        """Stop the master connection and remove the control socket's directory."""
        with self._lock:
            self._closed = True
            self._stop_master()

    def __enter__(self) -> Self:
        self.connect()
        return self


def _with_total_time(result: CommandResult, start: float) -> CommandResult:
    """Return result with duration_ms counted from start (waiting for a session included)."""
    total = (time.monotonic() - start) * 1000
    return CommandResult(
        result.argv, result.returncode, result.stdout, result.stderr, total, result.timed_out
    )


def _read_from(path: str, offset: int, limit: int = 1 << 16) -> str:
    """Return the last `limit` bytes appended to path since offset ('' if it cannot be read)."""
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(offset, size - limit))
            data: bytes = handle.read(limit)
    except OSError:
        return ""
    return data.decode("utf-8", "replace")


__all__ = [
    "ACCESS_ERROR_KINDS",
    "AccessError",
    "CommandResult",
    "Host",
    "LocalHost",
    "MAX_PARALLEL_SESSIONS",
    "SshHost",
    "classify_ssh_error",
    "parse_ssh_option",
    "remote_command",
]
