"""The gateway checks run with --on-gateway against files and sockets made here: what they
execute, and what they say when the gateway's programs misbehave."""

from __future__ import annotations

import hashlib
import os
import platform
import secrets
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from checks.bgp_peer_established import BgpPeerEstablished
from checks.kube_proxy_binary import KubeProxyBinary
from k8sreach.config import Settings
from k8sreach.context import RunContext
from k8sreach.result import Finding, Status
from k8sreach.target import parse_target

FIX = Path(__file__).resolve().parent.parent / "fixtures"
TARGET = parse_target("mysql-read.default")
MARKER = f"/tmp/k8sreach-ran-{secrets.token_hex(4)}"
BIRDC = shutil.which("birdc") or ("/usr/sbin/birdc" if os.path.exists("/usr/sbin/birdc") else None)


@pytest.fixture(autouse=True)
def _no_marker() -> Iterator[None]:
    if os.path.exists(MARKER):
        os.unlink(MARKER)
    yield
    ran = os.path.exists(MARKER)
    if ran:
        os.unlink(MARKER)
    assert not ran, "the check executed a file that is not a program for this machine"


def _run(check: object, **settings: object) -> Finding:
    ctx = RunContext(Settings(on_gateway=True, **settings), TARGET)  # type: ignore[arg-type]
    return check.run(ctx)  # type: ignore[attr-defined]


def _write(path: Path, data: bytes, mode: int = 0o755) -> str:
    path.write_bytes(data)
    path.chmod(mode)
    return str(path)


def _foreign_elf_header() -> bytes:
    """An ELF header for an architecture this machine does not run (aarch64 on x86_64)."""
    header = bytearray((FIX / "elf-header-x86_64-pie.bin").read_bytes())
    header[18:20] = (62 if platform.machine() != "x86_64" else 183).to_bytes(2, "little")
    return bytes(header)


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The lab's kube-proxy stand-in (prints `Kubernetes v1.29.3`), built here with cc."""
    import subprocess

    import k8sreach.lab

    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler to build the kube-proxy stand-in")
    source = Path(k8sreach.lab.__file__).parent / "kube_proxy_standin.c"
    out = tmp_path_factory.mktemp("standin") / "kube-proxy"
    subprocess.run(
        [compiler, "-O1", "-DSTANDIN_GOOD", "-o", str(out), str(source)], check=True, timeout=60
    )
    return out.read_bytes()


# kube-proxy-binary: only a confirmed program is run ------------------------------------


def test_shell_script_at_the_kube_proxy_path_is_not_run(tmp_path: Path) -> None:
    path = _write(tmp_path / "kube-proxy", f"#!/bin/sh\ntouch {MARKER}\n".encode())
    finding = _run(KubeProxyBinary(), kube_proxy_path=path)
    assert finding.status is Status.FAIL
    assert finding.summary == (
        f"{path} is not an ELF program (it starts with '#!/bin/sh\\ntouch '): the copy is corrupt"
    )
    assert finding.evidence["version_run"] is None


def test_elf_for_another_architecture_is_not_fed_to_the_shell(tmp_path: Path) -> None:
    # exec fails with ENOEXEC and sh then reads the file as a script: the touch would run
    path = _write(tmp_path / "kube-proxy", _foreign_elf_header() + f"\ntouch {MARKER}\n".encode())
    finding = _run(KubeProxyBinary(), kube_proxy_path=path)
    assert finding.status is Status.FAIL
    other = "aarch64" if platform.machine() == "x86_64" else "x86_64"
    assert (
        finding.summary == f"{path} is built for {other}, but the gateway is {platform.machine()}"
    )
    assert finding.evidence["version_run"] is None


def test_elf_without_execute_permission_is_not_run(tmp_path: Path) -> None:
    path = _write(tmp_path / "kube-proxy", Path("/bin/true").read_bytes(), mode=0o644)
    finding = _run(KubeProxyBinary(), kube_proxy_path=path)
    assert (finding.status, finding.summary) == (
        Status.FAIL,
        f"{path} is not executable (mode 644)",
    )
    assert finding.evidence["version_run"] is None


def test_directory_at_the_kube_proxy_path_fails_without_a_crash(tmp_path: Path) -> None:
    finding = _run(KubeProxyBinary(), kube_proxy_path=str(tmp_path))
    assert (finding.status, finding.summary) == (
        Status.FAIL,
        f"{tmp_path} is a directory, not a program",
    )


def test_sound_program_is_run_and_its_checksum_compared(tmp_path: Path, standin: bytes) -> None:
    path = _write(tmp_path / "kube-proxy", standin)
    sha = hashlib.sha256(standin).hexdigest()
    finding = _run(KubeProxyBinary(), kube_proxy_path=path, kube_proxy_sha256=sha)
    assert finding.status is Status.PASS
    assert finding.summary == f"kube-proxy v1.29.3 at {path}, sha256 matches --kube-proxy-sha256"
    assert finding.evidence["version_run"]["kind"] == "ok"
    assert finding.evidence["sha256"] == sha


def test_checksum_that_cannot_be_computed_in_time_is_not_a_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, standin: bytes
) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    _write(bindir / "sha256sum", b"#!/bin/sh\nexec sleep 10\n")  # a 3 GB file, say
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    path = _write(tmp_path / "kube-proxy", standin)
    start = time.monotonic()
    finding = _run(KubeProxyBinary(), kube_proxy_path=path, kube_proxy_sha256="a" * 64, timeout=0.5)
    assert time.monotonic() - start < 2.0
    assert finding.status is Status.WARN
    assert finding.summary == (
        f"sha256 of {path} could not be computed (sha256sum timed out after 0.5 s): checksum "
        "not verified"
    )
    assert finding.evidence["sha256"] is None
    assert finding.evidence["sha256_problem"] == "sha256sum timed out after 0.5 s"


def test_unusable_reference_node_is_said_in_the_summary(tmp_path: Path, standin: bytes) -> None:
    path = _write(tmp_path / "kube-proxy", standin)
    finding = _run(KubeProxyBinary(), kube_proxy_path=path, kube_proxy_reference="-oops")
    assert finding.status is Status.WARN
    assert finding.summary == (
        f"kube-proxy v1.29.3 at {path}, {platform.machine()} ELF, but the checksum was "
        "not compared: the reference node -oops could not be read: ssh destination '-oops' is "
        "not valid; give [user@]host or an alias from ~/.ssh/config"
    )


# bgp-peer-established: a BIRD socket that exists but does not answer ------------------


class _FakeBird:
    """A unix socket at a temp path that `serve(conn)` answers, one connection at a time."""

    def __init__(self, directory: Path, serve: Callable[[socket.socket], None]) -> None:
        self.path = str(directory / "bird.ctl")
        self._serve = serve
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(self.path)
        self._sock.listen(4)
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            with conn:
                try:
                    self._serve(conn)
                except OSError:
                    pass

    def __enter__(self) -> _FakeBird:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=3)
        self._sock.close()


def _greet_then(reply: bytes) -> Callable[[socket.socket], None]:
    def serve(conn: socket.socket) -> None:
        conn.sendall(b"0001 BIRD 2.0.12 ready.\n")
        conn.settimeout(2)
        conn.recv(1024)
        conn.sendall(reply)

    return serve


def _hang(conn: socket.socket) -> None:
    time.sleep(1.5)


def _close(conn: socket.socket) -> None:
    conn.close()


def _http(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")


needs_birdc = pytest.mark.skipif(BIRDC is None, reason="birdc (bird2) is not installed")


@needs_birdc
@pytest.mark.parametrize(
    ("serve", "said"),
    [
        (_greet_then(b"8003 No protocols match\n"), "No protocols match"),
        (_greet_then(b"9001 syntax error, unexpected END\n"), "syntax error, unexpected END"),
        (_close, "Connection closed by server"),
        (_http, "Connection closed by server"),
        (_hang, "timed out after 0.5 s"),
        (
            _greet_then(
                b"2002-Name Proto Table State Since Info\n1002-" + b"x" * 70000 + b"\n0000 \n"
            ),
            "a reply birdc cannot read: ??? <?<too-long>" + "x" * 117 + "...",
        ),
    ],
    ids=["8003", "9001", "closes", "not-bird", "hangs", "huge-line"],
)
def test_bird_socket_that_does_not_answer_is_not_a_missing_socket(
    tmp_path: Path, serve: Callable[[socket.socket], None], said: str
) -> None:
    with _FakeBird(tmp_path, serve) as bird:
        finding = _run(BgpPeerEstablished(), bird_socket=bird.path, timeout=0.5)
    assert finding.status is Status.FAIL
    assert finding.summary == f"birdc -s {bird.path} show protocols all failed: {said}"
    assert finding.evidence["socket"] == bird.path
    assert f"BIRD's control socket {bird.path} exists" in finding.remediation


@needs_birdc
def test_reply_birdc_cannot_read_shows_its_first_line_in_the_evidence(tmp_path: Path) -> None:
    with _FakeBird(tmp_path, _http) as bird:
        finding = _run(BgpPeerEstablished(), bird_socket=bird.path, timeout=0.5)
    assert finding.evidence["output"].startswith("??? <HTTP/1.1 400 Bad Request\r>\n")
    assert finding.evidence["stderr"] == "Connection closed by server\n"
    assert finding.evidence["returncode"] == 1


@needs_birdc
def test_stale_socket_with_no_bird_behind_it_says_so(tmp_path: Path) -> None:
    path = tmp_path / "bird.ctl"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # the socket file stays, nothing listens
    finding = _run(BgpPeerEstablished(), bird_socket=str(path), timeout=0.5)
    assert finding.summary == (
        f"birdc -s {path} show protocols all failed: Unable to connect to server control "
        f"socket ({path}): Connection refused"
    )


def test_missing_socket_is_still_reported_as_missing(tmp_path: Path) -> None:
    path = tmp_path / "bird.ctl"
    finding = _run(BgpPeerEstablished(), bird_socket=str(path), timeout=0.5)
    assert (finding.status, finding.summary) == (
        Status.FAIL,
        f"no BIRD control socket at {path} on the gateway",
    )


def test_socket_path_that_find_would_read_as_an_expression_is_refused() -> None:
    finding = _run(BgpPeerEstablished(), bird_socket="-delete", timeout=0.5)
    assert (finding.status, finding.summary) == (
        Status.FAIL,
        "--bird-socket '-delete' is not an absolute path",
    )


def test_socket_without_a_bird_client_to_read_it_names_the_missing_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "find").symlink_to(shutil.which("find") or "/usr/bin/find")
    monkeypatch.setenv("PATH", str(bindir))  # find, and no birdc, birdcl or calicoctl
    with _FakeBird(tmp_path, _hang) as bird:
        finding = _run(BgpPeerEstablished(), bird_socket=bird.path, timeout=0.5)
    assert (finding.status, finding.summary) == (
        Status.FAIL,
        f"BIRD's control socket {bird.path} exists, but neither birdc nor birdcl is installed "
        "on the gateway",
    )
