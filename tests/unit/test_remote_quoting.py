"""k8sreach.remote without a network: quoting, option checks, ssh message mapping, local runs."""

from __future__ import annotations

import logging
import os
import secrets
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from k8sreach import remote
from k8sreach.remote import (
    AccessError,
    CommandResult,
    Host,
    LocalHost,
    SshHost,
    classify_ssh_error,
    parse_ssh_option,
    remote_command,
)

MARKER = f"/tmp/k8sreach-owned-{secrets.token_hex(4)}"

HOSTILE = [
    f"/x; touch {MARKER}",
    f"$(touch {MARKER})",
    f"`touch {MARKER}`",
    f"' ; touch {MARKER}; '",
    f'" ; touch {MARKER}; "',
    f"a\ntouch {MARKER}",
    f"x && touch {MARKER} #",
    f"| touch {MARKER}",
    f"> {MARKER}",
    "'",
    '"',
    "\\",
    "\\'",
    "",
    " ",
    "\t",
    "*",
    "~",
    "~root",
    "$HOME",
    "${HOME}",
    "!!",
    "#",
    "{a,b}",
    "a=b",
    "-n",
    "--",
    "é ü 中",
    "%s",
]

SHELLS = [sh for sh in ("sh", "dash", "bash") if shutil.which(sh)]


@pytest.fixture(autouse=True)
def _no_marker() -> Iterator[None]:
    if os.path.exists(MARKER):
        os.unlink(MARKER)
    yield
    assert not os.path.exists(MARKER), "a hostile argument ran a command"


# Quoting -------------------------------------------------------------------------------


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("kill_after", [None, 5])
def test_remote_command_reaches_the_program_as_the_same_arguments(
    shell: str, kill_after: int | None
) -> None:
    # sshd runs `$SHELL -c STRING`; doing the same here shows what the program receives.
    command = remote_command(["printf", "%s\\0", *HOSTILE], kill_after=kill_after)
    proc = subprocess.run([shell, "-c", command], capture_output=True, timeout=10)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split(b"\0")[:-1] == [arg.encode() for arg in HOSTILE]


def test_remote_command_is_shlex_join_behind_a_fixed_prefix() -> None:
    assert shlex.split(remote_command(["cat", *HOSTILE])) == ["env", "LC_ALL=C", "cat", *HOSTILE]
    assert remote_command(["cat", "/x; touch /tmp/o"]) == "env LC_ALL=C cat '/x; touch /tmp/o'"
    assert remote_command(["sleep", "30"], kill_after=3) == (
        "env LC_ALL=C timeout -s KILL 3 sleep 30"
    )


def test_remote_command_sets_the_c_locale() -> None:
    command = remote_command(["sh", "-c", 'echo "$LC_ALL"'])
    proc = subprocess.run(["sh", "-c", command], capture_output=True, timeout=10)
    assert proc.stdout == b"C\n"


@pytest.mark.parametrize(
    ("argv", "error", "message"),
    [
        ([], ValueError, "argv needs a program name"),
        ([""], ValueError, "argv needs a program name"),
        (["A=B", "x"], ValueError, "not a program name: 'A=B'"),
        (["-i"], ValueError, "not a program name: '-i'"),
        (["cat", "a\0b"], ValueError, "argument 'a\\x00b' contains a NUL byte"),
        ("cat /etc/passwd", TypeError, "argv must be a sequence of arguments, not one string"),
    ],
)
def test_remote_command_refuses_argv_no_program_could_receive(
    argv: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as info:
        remote_command(argv)  # type: ignore[arg-type]
    assert str(info.value) == message


# Options and destination ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Port=2222", ("Port", "2222")),
        ("ProxyJump=admin@bastion", ("ProxyJump", "admin@bastion")),
        ("ProxyCommand=ssh -W %h:%p bastion", ("ProxyCommand", "ssh -W %h:%p bastion")),
        ("SetEnv=A=B", ("SetEnv", "A=B")),
        ("ServerAliveInterval=15", ("ServerAliveInterval", "15")),
    ],
)
def test_parse_ssh_option_passes_user_choices_through(text: str, expected: tuple[str, str]) -> None:
    assert parse_ssh_option(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Port", "ssh option 'Port' is not KEY=VALUE; write it like Port=2222"),
        ("Bad-Key=1", "ssh option name 'Bad-Key' is not an ssh keyword (letters and digits only)"),
        ("=1", "ssh option name '' is not an ssh keyword (letters and digits only)"),
        ("Port=", "ssh option Port needs a value on one line, e.g. Port=VALUE"),
        ("User=a\nb", "ssh option User needs a value on one line, e.g. User=VALUE"),
        (
            "BatchMode=no",
            "ssh option BatchMode cannot be set: k8sreach never prompts, BatchMode is always yes",
        ),
        (
            "controlpath=/tmp/x",
            "ssh option controlpath cannot be set: k8sreach keeps its "
            "control socket in a private directory",
        ),
        (
            "ConnectTimeout=30",
            "ssh option ConnectTimeout cannot be set: k8sreach derives it from its own timeout",
        ),
        (
            "LogLevel=DEBUG3",
            "ssh option LogLevel cannot be set: use --verbose to see what ssh does",
        ),
    ],
)
def test_parse_ssh_option_rejects_what_ssh_cannot_take_or_k8sreach_owns(
    text: str, message: str
) -> None:
    with pytest.raises(AccessError) as info:
        parse_ssh_option(text)
    assert (info.value.kind, info.value.message) == ("config", message)


@pytest.mark.parametrize("dest", ["-oProxyCommand=touch /tmp/x", "a b", "gw\n", ""])
def test_ssh_host_refuses_a_destination_ssh_would_read_as_an_option(dest: str) -> None:
    with pytest.raises(AccessError) as info:
        SshHost(dest)
    assert info.value.kind == "config"
    assert info.value.message == (
        f"ssh destination {dest!r} is not valid; give [user@]host or an alias from ~/.ssh/config"
    )


def test_ssh_host_refuses_a_missing_identity_file(tmp_path: Path) -> None:
    missing = str(tmp_path / "id_ed25519")
    with pytest.raises(AccessError) as info:
        SshHost("root@gw", identity=missing)
    assert (info.value.kind, info.value.message) == (
        "config",
        f"identity file {missing} not found; give an existing private key",
    )


def test_ssh_host_refuses_forced_options_given_as_mapping() -> None:
    with pytest.raises(AccessError) as info:
        SshHost("root@gw", options={"ControlMaster": "auto"})
    assert info.value.message == (
        "ssh option ControlMaster cannot be set: k8sreach runs its own ssh master connection"
    )


def test_ssh_options_put_forced_values_first_because_ssh_keeps_the_first(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("not a real key")
    host = SshHost(
        "admin@gw",
        identity=str(key),
        options={"Port": "2222", "ServerAliveInterval": "30"},
        connect_timeout=2.5,
    )
    assert host.label == "gateway (admin@gw)"
    assert host._ssh_options("no", "/tmp/d/cm", "ERROR") == [
        "-o", "BatchMode=yes",
        "-o", "ControlMaster=no",
        "-o", "ControlPath=/tmp/d/cm",
        "-o", "ControlPersist=no",
        "-o", "LogLevel=ERROR",
        "-o", "ClearAllForwardings=yes",
        "-o", "RemoteCommand=none",
        "-o", "RequestTTY=no",
        "-o", "ForwardAgent=no",
        "-o", "ForwardX11=no",
        "-o", "Port=2222",
        "-o", "ServerAliveInterval=30",
        "-o", "ConnectTimeout=3",
        "-o", "ServerAliveInterval=5",
        "-o", "ServerAliveCountMax=3",
        "-i", str(key),
    ]  # fmt: skip


# ssh's messages -> AccessError kinds ---------------------------------------------------

# Messages as OpenSSH 9.x prints them (several seen in this project's lab, the others are
# the same code paths reached another way).
SSH_MESSAGES = [
    ("ssh: connect to host 127.0.0.1 port 2223: Connection refused\r\n", "refused"),
    (
        "kex_exchange_identification: Connection closed by remote host\r\n"
        "Connection closed by 127.0.0.1 port 2225\r\n",
        "refused",
    ),
    (
        "kex_exchange_identification: read: Connection reset by peer\r\n"
        "Connection reset by 10.1.2.3 port 22\r\n",
        "refused",
    ),
    (
        "channel 0: open failed: connect failed: Connection refused\r\n"
        "stdio forwarding failed\r\n"
        "Connection closed by UNKNOWN port 65535\r\n",
        "refused",
    ),
    ("ssh: connect to host 10.1.2.3 port 22: Connection timed out\r\n", "timeout"),
    ("ssh: connect to host gw.example port 22: Operation timed out\r\n", "timeout"),
    (
        "Connection timed out during banner exchange\r\n"
        "Connection to 127.0.0.1 port 2224 timed out\r\n",
        "timeout",
    ),
    ("Timeout, server 10.1.2.3 not responding.\r\n", "timeout"),
    ("ssh: connect to host 10.1.2.3 port 22: No route to host\r\n", "unreachable"),
    ("ssh: connect to host 10.9.9.9 port 2222: Network is unreachable\r\n", "unreachable"),
    ("root@127.0.0.1: Permission denied (publickey).\r\n", "auth"),
    (
        "Warning: Identity file /tmp/nokey not accessible: No such file or directory.\n"
        "root@127.0.0.1: Permission denied (publickey).\r\n",
        "auth",
    ),
    (
        "Received disconnect from 10.1.2.3 port 22:2: Too many authentication failures\r\n"
        "Disconnected from 10.1.2.3 port 22\r\n",
        "auth",
    ),
    ("Host key verification failed.\r\n", "hostkey"),
    (
        "No ED25519 host key is known for [127.0.0.1]:2222 and you have requested strict "
        "checking.\r\nHost key verification failed.\r\n",
        "hostkey",
    ),
    (
        "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\r\n"
        "@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\r\n"
        "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\r\n"
        "Host key for [127.0.0.1]:2222 has changed and you have requested strict checking.\r\n"
        "Host key verification failed.\r\n",
        "hostkey",
    ),
    (
        "ssh: Could not resolve hostname nonexistent.invalid: Temporary failure in name "
        "resolution\r\n",
        "config",
    ),
    ("ssh: Could not resolve hostname gw: Name or service not known\r\n", "config"),
    ("command-line: line 0: Bad configuration option: foo\r\n", "config"),
    (
        "Unable to negotiate with 10.1.2.3 port 22: no matching host key type found. "
        "Their offer: ssh-rsa,ssh-dss\r\n",
        "config",
    ),
    ("mux_client_request_session: session request failed: Session open refused by peer\n", "other"),
    ("cat: /etc/nope: No such file or directory\n", None),
    ("debug1: Connecting to 127.0.0.1 port 2222: Connection refused by policy\n", None),
    ("", None),
]


@pytest.mark.parametrize(("stderr", "kind"), SSH_MESSAGES)
def test_classify_ssh_error_maps_real_ssh_messages(stderr: str, kind: str | None) -> None:
    assert classify_ssh_error(stderr) == kind


def test_refused_error_says_what_was_tried_and_what_to_do() -> None:
    error = remote._access_error(
        "root@gw", "ssh: connect to host gw port 22: Connection refused\r\n", 2
    )
    assert error.kind == "refused"
    assert error.message == (
        "ssh root@gw: the gateway refused the connection (ssh: connect to host gw port 22: "
        "Connection refused); check that sshd runs there and the port is right (Port in "
        "~/.ssh/config or ssh option Port=N)"
    )
    assert error.detail == "ssh: connect to host gw port 22: Connection refused"
    assert str(error) == error.message


def test_auth_error_names_the_denial_not_the_identity_warning() -> None:
    error = remote._access_error(
        "root@gw",
        "debug1: Offering public key\nWarning: Identity file /k not accessible: No such file "
        "or directory.\nroot@gw: Permission denied (publickey).\r\n",
        2,
    )
    assert error.kind == "auth"
    assert error.message == (
        "ssh root@gw: authentication failed (root@gw: Permission denied (publickey)); k8sreach "
        "never asks for a password: give the private key (--ssh-identity) or load it into "
        "ssh-agent"
    )
    assert error.detail == (
        "Warning: Identity file /k not accessible: No such file or directory.\n"
        "root@gw: Permission denied (publickey)."
    )


def test_access_error_refuses_an_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown AccessError kind 'weird'"):
        AccessError("weird", "x")


# Connect failures without a network: a stand-in ssh program -----------------------------


def _fake_ssh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> Path:
    """Put a shell script named ssh first in PATH and private temp dirs under tmp_path."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "ssh"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    return temp


def test_failed_login_raises_its_kind_and_leaves_no_control_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    temp = _fake_ssh(
        tmp_path,
        monkeypatch,
        'echo "ssh: connect to host gw port 22: No route to host" >&2; exit 255',
    )
    host = SshHost("root@gw")
    with pytest.raises(AccessError) as info:
        host.connect(5.0)
    assert info.value.kind == "unreachable"
    assert info.value.message == (
        "ssh root@gw: the gateway is unreachable from here (ssh: connect to host gw port 22: "
        "No route to host); check the address and this machine's route to it"
    )
    assert os.listdir(temp) == []
    host.close()


def test_login_that_never_finishes_is_cut_at_the_connect_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    temp = _fake_ssh(tmp_path, monkeypatch, "exec sleep 30")
    host = SshHost("root@gw", connect_timeout=0.5)
    start = time.monotonic()
    with pytest.raises(AccessError) as info:
        host.connect(0.5)
    assert time.monotonic() - start < 1.0
    assert info.value.kind == "timeout"
    assert info.value.message == (
        "ssh root@gw: no SSH session within 0.5 s: the port does not answer (filtered or "
        "dropped) or the server did not finish the handshake; check the address, firewalls on "
        "the way and sshd on the gateway, or allow a longer timeout"
    )
    assert os.listdir(temp) == []


# What ssh -v prints before the login is cut: ssh's own lines (OpenSSH 9.2), in order.
_CONNECTING = "debug1: Connecting to gw [192.0.2.1] port 22."
_ESTABLISHED = "debug1: Connection established."
_BANNER = "debug1: Remote protocol version 2.0, remote software version OpenSSH_9.2p1"


@pytest.mark.parametrize(
    ("lines", "why"),
    [
        (
            [_CONNECTING],
            "the SSH port does not answer (packets filtered or dropped on the way); check the "
            "address and port, and that no firewall drops SSH to the gateway, or allow a longer "
            "timeout",
        ),
        (
            [_CONNECTING, _ESTABLISHED],
            "the TCP connection was accepted but no SSH greeting came back; check that sshd "
            "(not something else) listens on that port and is not overloaded",
        ),
        (
            [_CONNECTING, _ESTABLISHED, _BANNER],
            "the server answered but the key exchange or authentication did not finish; check "
            "sshd on the gateway (its logs, a slow PAM or DNS lookup) or allow a longer timeout",
        ),
        (
            ["debug1: Executing proxy command: exec ssh -W [gw]:22 jump", _CONNECTING],
            "the port does not answer (filtered or dropped) or the server did not finish the "
            "handshake; check the address, firewalls on the way and sshd on the gateway, or "
            "allow a longer timeout",
        ),
    ],
)
def test_login_cut_at_the_deadline_says_how_far_ssh_got(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lines: list[str], why: str
) -> None:
    echoes = "; ".join(f"echo '{line}' >&2" for line in lines)
    _fake_ssh(tmp_path, monkeypatch, f"{echoes}; exec sleep 30")
    host = SshHost("root@gw", connect_timeout=0.5)
    with pytest.raises(AccessError) as info:
        host.connect(0.5)
    assert info.value.kind == "timeout"
    assert info.value.message == f"ssh root@gw: no SSH session within 0.5 s: {why}"
    assert info.value.detail == ""  # debug lines stay in the verbose log


def test_master_connection_runs_at_debug1_so_a_cut_login_can_be_explained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = tmp_path / "args"
    _fake_ssh(tmp_path, monkeypatch, f'printf "%s\\n" "$@" > {args}; exit 255')
    with pytest.raises(AccessError):
        SshHost("root@gw").connect(2.0)
    assert "LogLevel=DEBUG1" in args.read_text().splitlines()


def test_run_after_close_raises_instead_of_connecting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_ssh(tmp_path, monkeypatch, "exit 255")
    host = SshHost("root@gw")
    host.close()
    with pytest.raises(AccessError) as info:
        host.run(["true"], 1.0)
    assert info.value.message == "gateway (root@gw): the connection was already closed"


def test_missing_ssh_client_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(AccessError) as info:
        SshHost("root@gw").connect(1.0)
    assert (info.value.kind, info.value.message) == (
        "config",
        "the OpenSSH client `ssh` is not installed; install openssh-client",
    )


# LocalHost (the same read_file/glob code as SshHost, run here) ---------------------------


def test_local_host_is_a_host() -> None:
    assert isinstance(LocalHost(), Host)
    assert LocalHost().label == "gateway (local)"


def test_local_run_returns_output_and_exit_code() -> None:
    result = LocalHost().run(
        ["sh", "-c", 'printf "%s" "$1"; echo oops >&2; exit 3', "sh", "a b"], 5.0
    )
    assert (result.returncode, result.stdout, result.stderr) == (3, b"a b", b"oops\n")
    assert result.timed_out is False
    assert result.argv == ("sh", "-c", 'printf "%s" "$1"; echo oops >&2; exit 3', "sh", "a b")


def test_local_run_feeds_input() -> None:
    assert LocalHost().run(["cat"], 5.0, input=b"x\x00y" * 50000).stdout == b"x\x00y" * 50000


def test_local_run_uses_the_c_locale() -> None:
    assert LocalHost().run(["sh", "-c", 'echo "$LC_ALL"'], 5.0).text == "C\n"


def test_local_run_of_a_missing_program_answers_like_a_shell() -> None:
    result = LocalHost().run(["k8sreach-no-such-program", "x"], 5.0)
    assert (result.returncode, result.err_text) == (
        127,
        "k8sreach: k8sreach-no-such-program: command not found\n",
    )


def _foreign_elf(tmp_path: Path) -> Path:
    """An executable ELF header for an architecture this machine does not run."""
    import platform

    header = bytearray(
        (Path(__file__).parent.parent / "fixtures/elf-header-x86_64-pie.bin").read_bytes()
    )
    machine = 62 if platform.machine() != "x86_64" else 183  # x86_64, else aarch64
    header[18:20] = machine.to_bytes(2, "little")
    path = tmp_path / "foreign"
    path.write_bytes(bytes(header))
    path.chmod(0o755)
    return path


def test_local_run_of_what_cannot_be_executed_answers_like_a_shell(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.write_bytes(b"\x7fELF not a program")
    data.chmod(0o644)
    foreign = _foreign_elf(tmp_path)
    host = LocalHost()
    answers = {
        name: (r.returncode, r.stdout, r.err_text, r.timed_out)
        for name, r in [
            ("not executable", host.run([str(data), "--version"], 5.0)),
            ("directory", host.run([str(tmp_path), "--version"], 5.0)),
            ("other architecture", host.run([str(foreign), "--version"], 5.0)),
            ("missing", host.run([str(tmp_path / "nope"), "--version"], 5.0)),
        ]
    }
    assert answers == {
        "not executable": (126, b"", f"k8sreach: {data}: Permission denied\n", False),
        "directory": (126, b"", f"k8sreach: {tmp_path}: Permission denied\n", False),
        "other architecture": (126, b"", f"k8sreach: {foreign}: Exec format error\n", False),
        "missing": (127, b"", f"k8sreach: {tmp_path}/nope: No such file or directory\n", False),
    }


def test_local_run_is_cut_at_its_timeout_with_its_children() -> None:
    start = time.monotonic()
    result = LocalHost().run(["sh", "-c", "echo started; sleep 30 & sleep 30"], 0.3)
    assert time.monotonic() - start < 1.0
    assert (result.returncode, result.timed_out, result.stdout) == (None, True, b"started\n")


def test_command_result_text_replaces_undecodable_bytes() -> None:
    result = CommandResult(("x",), 0, b"\xffok", b"\xfe", 1.0, False)
    assert (result.text, result.err_text) == ("\ufffdok", "\ufffd")


def test_local_run_logs_the_command_and_a_summary(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="k8sreach.remote"):
        LocalHost().run(["sh", "-c", "echo no >&2; exit 1"], 5.0)
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == "gateway (local): run sh -c 'echo no >&2; exit 1' (timeout 5 s)"
    assert messages[1].startswith("gateway (local): sh -> rc=1, stdout 0 B, stderr 3 B, ")
    assert messages[1].endswith(" ms (no)")


def test_read_file_returns_bytes_none_when_missing_and_caps_size(tmp_path: Path) -> None:
    host = LocalHost()
    odd = tmp_path / "x; touch $(id) 'q' \"q\""
    odd.write_bytes(b"\x00\xff\n")
    (tmp_path / "plain").write_bytes(b"abcdef")
    assert host.read_file(str(odd), 5.0) == b"\x00\xff\n"
    assert host.read_file(str(tmp_path / "plain"), 5.0, max_bytes=4) == b"abcd"
    assert host.read_file(str(tmp_path / "nope"), 5.0) is None
    assert host.read_file(str(tmp_path / "plain" / "below"), 5.0) is None
    assert host.read_file(f"/x; touch {MARKER}", 5.0) is None
    assert host.read_file(f"-x; touch {MARKER}", 5.0) is None


def test_read_file_of_a_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(AccessError) as info:
        LocalHost().read_file(str(tmp_path), 5.0)
    assert info.value.kind == "other"
    assert info.value.message == (
        f"reading {tmp_path} on gateway (local) failed: head: error reading '{tmp_path}': "
        "Is a directory"
    )


def test_glob_lists_names_with_the_literal_suffix_sorted(tmp_path: Path) -> None:
    for name in ("b.conf", "a.conf", "c.txt", "*.conf", "x.conf.bak", "it's\n.conf", ".h.conf"):
        (tmp_path / name).write_text("")
    (tmp_path / "sub.conf").mkdir()
    (tmp_path / "sub.conf" / "deep.conf").write_text("")
    link = tmp_path.parent / f"{tmp_path.name}-link"
    link.symlink_to(tmp_path)
    host = LocalHost()
    names = ["*.conf", ".h.conf", "a.conf", "b.conf", "it's\n.conf", "sub.conf"]
    assert host.glob(str(tmp_path), ".conf", 5.0) == [f"{tmp_path}/{n}" for n in names]
    assert host.glob(f"{link}/", ".conf", 5.0) == [f"{link}/{n}" for n in names]
    assert host.glob(str(tmp_path), "*.conf", 5.0) == [f"{tmp_path}/*.conf"]
    assert host.glob(str(tmp_path / "nope"), ".conf", 5.0) == []
    link.unlink()


def test_glob_needs_an_absolute_directory() -> None:
    with pytest.raises(ValueError, match="glob needs an absolute directory, not 'etc'"):
        LocalHost().glob("etc", ".conf", 5.0)


def test_master_progress_lines_are_neither_the_error_nor_its_detail() -> None:
    log = (
        "debug1: Connecting to gw [192.0.2.1] port 22.\n"
        'Authenticated to gw ([192.0.2.1]:22) using "publickey".\n'
        "Timeout, server gw not responding.\n"
        "Transferred: sent 3692, received 3440 bytes, in 20.1 seconds\n"
        "Bytes per second: sent 183.7, received 171.2\n"
    )
    error = remote._access_error("root@gw", log, 5.0)
    assert (error.kind, error.detail) == ("timeout", "Timeout, server gw not responding.")
