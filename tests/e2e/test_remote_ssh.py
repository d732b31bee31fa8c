"""SshHost against a real sshd inside a private network namespace (needs root).

Each scenario runs in a child Python started with `ip netns exec`, so the ssh client and the
sshd both live in the namespace and nothing leaves it; the child prints one JSON line.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

pytestmark = pytest.mark.lab

SSHD_PORT = 2222
CLOSED_PORT = 2223
TARPIT_PORT = 2224
SCENARIO_TIMEOUT = 90.0


# The scenarios (run inside the namespace) -----------------------------------------------


def _host(p: dict[str, Any], **overrides: Any) -> Any:
    """Return an SshHost for the lab's sshd, with the scenario's changes."""
    from k8sreach.remote import SshHost

    options = {
        "Port": str(overrides.pop("port", SSHD_PORT)),
        "UserKnownHostsFile": overrides.pop("known_hosts", p["known_hosts"]),
        "GlobalKnownHostsFile": "/dev/null",
        "StrictHostKeyChecking": "yes",
        "IdentitiesOnly": "yes",
    }
    kwargs = {"identity": p["client_key"], "options": options, "connect_timeout": 2.0}
    kwargs.update(overrides)
    return SshHost("root@127.0.0.1", **kwargs)


def _leftovers() -> list[str]:
    """Return what is left in this scenario's private TMPDIR."""
    return sorted(os.listdir(tempfile.gettempdir()))


def _failure(p: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """Connect with the given changes and return the AccessError's kind, message and cost."""
    from k8sreach.remote import AccessError

    host = _host(p, **overrides)
    start = time.monotonic()
    try:
        host.connect(overrides.get("connect_timeout", 2.0) + 5.0)
    except AccessError as exc:
        return {
            "kind": exc.kind,
            "message": exc.message,
            "detail": exc.detail,
            "seconds": time.monotonic() - start,
            "leftovers": _leftovers(),
        }
    finally:
        host.close()
    return {"kind": None, "seconds": time.monotonic() - start, "leftovers": _leftovers()}


class _Collect(logging.Handler):
    """Keeps the formatted messages of k8sreach.remote's log."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def scenario_basic(p: dict[str, Any]) -> dict[str, Any]:
    host = _host(p)
    start = time.monotonic()
    host.connect(5.0)
    connect_ms = (time.monotonic() - start) * 1000
    log = logging.getLogger("k8sreach.remote")
    collect = _Collect()
    log.addHandler(collect)
    log.setLevel(logging.DEBUG)
    try:
        uname = host.run(["uname", "-m"], 5.0)
        log.removeHandler(collect)
        latencies = [host.run(["true"], 5.0).duration_ms for _ in range(20)]
        files = p["files"]
        return {
            "connect_ms": connect_ms,
            "uname": [uname.returncode, uname.text],
            "log": [re.sub(r"[0-9.]+ ms", "N ms", m) for m in collect.messages],
            "latency_median_ms": statistics.median(latencies),
            "latency_max_ms": max(latencies),
            "read": host.read_file(os.path.join(files, 'it\'s a "file"\n.conf'), 5.0).hex(),
            "read_capped": host.read_file(os.path.join(files, "b.conf"), 5.0, max_bytes=3).hex(),
            "read_missing": host.read_file(os.path.join(files, "nope"), 5.0),
            "read_under_file": host.read_file(os.path.join(files, "b.conf", "x"), 5.0),
            "glob": host.glob(files, ".conf", 5.0),
            "glob_link": host.glob(p["files_link"] + "/", ".conf", 5.0),
            "glob_missing": host.glob(os.path.join(files, "nope"), ".conf", 5.0),
            "stdin": host.run(["cat"], 5.0, input=b"in\x00put").stdout.hex(),
        }
    finally:
        host.close()


def scenario_concurrent(p: dict[str, Any]) -> dict[str, Any]:
    host = _host(p)
    host.connect(5.0)
    results: dict[int, Any] = {}

    def one(i: int) -> None:
        res = host.run(["sh", "-c", 'sleep 0.3; echo "$1"', "sh", f"n{i}"], 20.0)
        results[i] = [res.returncode, res.text, res.err_text]

    start = time.monotonic()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30.0)
    wall = time.monotonic() - start
    host.close()
    return {"results": {str(k): v for k, v in sorted(results.items())}, "wall_s": wall}


def scenario_hostile(p: dict[str, Any]) -> dict[str, Any]:
    marker = p["marker"]
    paths = [
        f"/x; touch {marker}",
        f"/x$(touch {marker})",
        f"/x`touch {marker}`",
        f"/x' ; touch {marker}; '",
        f'/x" ; touch {marker}; "',
        f"/x\ntouch {marker}",
        f"/x && touch {marker} #",
        f"/-x | touch {marker}",
    ]
    host = _host(p)
    try:
        read = [host.read_file(path, 5.0) for path in [*paths, f"-x; touch {marker}"]]
        cats = []
        for path in paths:
            res = host.run(["cat", path], 5.0)
            cats.append([res.returncode, res.err_text])
        echoed = host.run(["printf", "%s\\0", *paths, "", "*", "~", "$HOME"], 5.0)
    finally:
        host.close()
    return {
        "paths": paths,
        "read": read,
        "cats": cats,
        "echoed": echoed.text.split("\0")[:-1],
        "marker_exists": os.path.exists(marker),
    }


def scenario_refused(p: dict[str, Any]) -> dict[str, Any]:
    return _failure(p, port=CLOSED_PORT)


def scenario_tarpit(p: dict[str, Any]) -> dict[str, Any]:
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", TARPIT_PORT))
    listener.listen(8)
    held: list[socket.socket] = []

    def accept() -> None:
        # Take the connection and say nothing: the client waits for a banner that never comes.
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            held.append(conn)

    threading.Thread(target=accept, daemon=True).start()
    try:
        return _failure(p, port=TARPIT_PORT) | {"accepted": len(held)}
    finally:
        listener.close()


def scenario_auth(p: dict[str, Any]) -> dict[str, Any]:
    return _failure(p, identity=p["wrong_key"])


def scenario_verbose_auth(p: dict[str, Any]) -> dict[str, Any]:
    log_path = os.path.join(p["files"], "..", f"ssh-{secrets.token_hex(4)}.log")
    with open(log_path, "w") as handle:
        handle.write("earlier run\n")
    out = _failure(p, identity=p["wrong_key"], verbose_log=log_path)
    with open(log_path) as handle:
        lines = handle.read().splitlines()
    os.unlink(log_path)
    return out | {
        "first_line": lines[0],
        "debug_lines": sum(ln.startswith("debug1:") for ln in lines),
    }


def scenario_reconnect(p: dict[str, Any]) -> dict[str, Any]:
    host = _host(p)
    host.connect(5.0)
    first_dir = host.control_dir
    host._master.proc.kill()  # the master dies, as when the gateway drops the connection
    host._master.proc.wait(5.0)
    try:
        res = host.run(["uname", "-m"], 5.0)
        second_dir = host.control_dir
    finally:
        host.close()
    return {
        "rc": res.returncode,
        "new_dir": second_dir != first_dir,
        "first_dir_exists": os.path.exists(first_dir),
        "leftovers": _leftovers(),
    }


def scenario_hostkey(p: dict[str, Any]) -> dict[str, Any]:
    return _failure(p, known_hosts=p["empty_known_hosts"])


def scenario_close(p: dict[str, Any]) -> dict[str, Any]:
    from k8sreach.remote import AccessError

    host = _host(p)
    host.connect(5.0)
    control_dir = host.control_dir
    before = {
        "dir_mode": oct(os.stat(control_dir).st_mode & 0o777),
        "socket": os.path.exists(os.path.join(control_dir, "cm")),
        "leftovers": _leftovers(),
    }
    master = host._master.proc
    host.close()
    host.close()  # a second close is harmless
    after = {
        "dir_exists": os.path.exists(control_dir),
        "master_returncode": master.poll(),
        "leftovers": _leftovers(),
    }
    try:
        host.run(["true"], 5.0)
        after["run_after_close"] = None
    except AccessError as exc:
        after["run_after_close"] = exc.message
    with _host(p) as other:
        ctx_dir = other.control_dir
        ctx_uname = other.run(["uname", "-m"], 5.0).returncode
    after |= {"ctx_rc": ctx_uname, "ctx_dir_exists": os.path.exists(ctx_dir)}
    return {"before": before, "after": after}


def _processes_with(argv: list[str]) -> list[int]:
    """Return the pids whose command line is exactly argv."""
    wanted = ("\0".join(argv) + "\0").encode()
    pids = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                if handle.read() == wanted:
                    pids.append(int(entry))
        except (OSError, ValueError):
            continue
    return pids


def scenario_hang(p: dict[str, Any]) -> dict[str, Any]:
    host = _host(p)
    host.connect(5.0)
    sleeper = ["sleep", f"30.{secrets.randbelow(10**6):06d}"]
    try:
        start = time.monotonic()
        res = host.run(sleeper, 1.0)
        cut = time.monotonic() - start
        after = host.run(["echo", "still here"], 5.0)
        # The sshd shares this machine's processes, so the gateway side can be watched.
        deadline = time.monotonic() + 5.0
        while _processes_with(sleeper) and time.monotonic() < deadline:
            time.sleep(0.05)
        remote_gone = time.monotonic() - start
        still_running = _processes_with(sleeper)
    finally:
        host.close()
    return {
        "timed_out": res.timed_out,
        "returncode": res.returncode,
        "seconds": cut,
        "after": [after.returncode, after.text],
        "remote_still_running": still_running,
        "remote_gone_after_s": remote_gone,
        "leftovers": _leftovers(),
    }


SCENARIOS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    name.removeprefix("scenario_"): fn
    for name, fn in list(globals().items())
    if name.startswith("scenario_")
}


# The lab and the tests (run by pytest in the root namespace) ----------------------------


@dataclass(frozen=True)
class Lab:
    ns: str
    root: str
    params: dict[str, Any]


def _keygen(path: str, comment: str) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path],
        check=True,
        timeout=30,
    )


def _wait_listening(log_path: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        with open(log_path, encoding="utf-8", errors="replace") as handle:
            if "Server listening on 127.0.0.1" in handle.read():
                return
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    with open(log_path, encoding="utf-8", errors="replace") as handle:
        raise RuntimeError(f"sshd did not start: {handle.read()}")


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    for tool in ("ip", "unshare", "ssh", "ssh-keygen"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    if not os.path.exists(sshd):
        pytest.skip("sshd is not installed")

    suffix = secrets.token_hex(4)
    ns = f"k8sr-ssh-{suffix}"
    root = tempfile.mkdtemp(prefix=f"k8sr-ssh-e2e-{suffix}-")
    proc: subprocess.Popen[bytes] | None = None
    ns_made = False
    try:
        for name in ("host_key", "client_key", "wrong_key"):
            _keygen(os.path.join(root, name), name)
        shutil.copy(os.path.join(root, "client_key.pub"), os.path.join(root, "authorized"))
        with open(os.path.join(root, "host_key.pub")) as handle:
            host_pub = " ".join(handle.read().split()[:2])
        known = os.path.join(root, "known_hosts")
        with open(known, "w") as handle:
            handle.write(f"[127.0.0.1]:{SSHD_PORT} {host_pub}\n")
        empty_known = os.path.join(root, "empty_known_hosts")
        open(empty_known, "w").close()
        config = os.path.join(root, "sshd_config")
        with open(config, "w") as handle:
            handle.write(
                f"ListenAddress 127.0.0.1:{SSHD_PORT}\n"
                f"HostKey {root}/host_key\n"
                f"AuthorizedKeysFile {root}/authorized\n"
                f"PidFile {root}/sshd.pid\n"
                "UsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\n"
                "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            )
        files = os.path.join(root, "files")
        os.mkdir(files)
        for name, data in (
            ('it\'s a "file"\n.conf', b"\x00\xffsysctl=1\n"),
            ("b.conf", b"abcdef"),
            ("c.txt", b""),
            ("*.conf", b""),
        ):
            with open(os.path.join(files, name), "wb") as handle:
                handle.write(data)
        os.mkdir(os.path.join(files, "d.conf"))
        os.symlink(files, os.path.join(root, "files_link"))

        subprocess.run(["ip", "netns", "add", ns], check=True, timeout=30)
        ns_made = True
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True, timeout=30)
        # sshd insists on /run/sshd, which this host lacks: give it a private /run in a
        # mount namespace of its own instead of creating the directory on the host. An empty
        # /root there too, so the root shell sshd starts reads no ~/.bashrc of this machine
        # (here it costs over 100 ms a command) and the timings are k8sreach's own.
        start_sshd = (
            "mount -t tmpfs -o mode=755 tmpfs /run && mkdir -m 755 /run/sshd "
            '&& mount -t tmpfs -o mode=700 tmpfs /root && exec "$0" -D -e -f "$1"'
        )
        log_path = os.path.join(root, "sshd.log")
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [
                    "ip",
                    "netns",
                    "exec",
                    ns,
                    "unshare",
                    "--mount",
                    "--propagation",
                    "private",
                    "sh",
                    "-c",
                    start_sshd,
                    sshd,
                    config,
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        _wait_listening(log_path, proc)
        params = {
            "client_key": os.path.join(root, "client_key"),
            "wrong_key": os.path.join(root, "wrong_key"),
            "known_hosts": known,
            "empty_known_hosts": empty_known,
            "files": files,
            "files_link": os.path.join(root, "files_link"),
            "marker": f"/tmp/owned-{suffix}",
        }
        yield Lab(ns, root, params)
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(5.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5.0)
        if ns_made:
            subprocess.run(["ip", "netns", "del", ns], check=False, timeout=30)
        shutil.rmtree(root, ignore_errors=True)


def _scenario(lab: Lab, name: str) -> dict[str, Any]:
    tmp = tempfile.mkdtemp(prefix=f"{name}-", dir=lab.root)
    env = dict(os.environ, TMPDIR=tmp)
    proc = subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            lab.ns,
            sys.executable,
            os.path.abspath(__file__),
            name,
            json.dumps(lab.params),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=SCENARIO_TIMEOUT,
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    print(name, json.dumps(result, indent=1))
    return result


@pytest.fixture(scope="module")
def basic(lab: Lab) -> dict[str, Any]:
    return _scenario(lab, "basic")


def test_run_answers_over_the_master_connection(basic: dict[str, Any]) -> None:
    out = basic
    assert out["uname"] == [0, os.uname().machine + "\n"]
    assert out["connect_ms"] < 2000
    # Over the master a command costs one session, not one login.
    assert out["latency_median_ms"] < 100
    assert out["log"] == [
        "gateway (root@127.0.0.1): run uname -m (timeout 5 s)",
        "gateway (root@127.0.0.1): uname -> rc=0, stdout 7 B, stderr 0 B, N ms",
    ]


def test_read_file_and_glob_return_exact_content_and_names(lab: Lab, basic: dict[str, Any]) -> None:
    out = basic
    files = lab.params["files"]
    assert bytes.fromhex(out["read"]) == b"\x00\xffsysctl=1\n"
    assert bytes.fromhex(out["read_capped"]) == b"abc"
    assert out["read_missing"] is None
    assert out["read_under_file"] is None
    expected = sorted(
        f"{files}/{n}" for n in ("*.conf", "b.conf", "d.conf", 'it\'s a "file"\n.conf')
    )
    assert out["glob"] == expected
    link = lab.params["files_link"]
    assert out["glob_link"] == sorted(e.replace(files, link) for e in expected)
    assert out["glob_missing"] == []
    assert bytes.fromhex(out["stdin"]) == b"in\x00put"


def test_twenty_concurrent_runs_share_one_master(lab: Lab) -> None:
    out = _scenario(lab, "concurrent")
    assert out["results"] == {str(i): [0, f"n{i}\n", ""] for i in range(20)}
    # 8 sessions at a time: three rounds, far less than 20 one after another (over 6 s).
    assert out["wall_s"] < 3.0


def test_hostile_paths_reach_the_program_as_one_argument(lab: Lab) -> None:
    out = _scenario(lab, "hostile")
    if os.path.exists(lab.params["marker"]):
        os.unlink(lab.params["marker"])
    assert out["marker_exists"] is False
    assert out["read"] == [None] * (len(out["paths"]) + 1)
    marker = lab.params["marker"]
    # coreutils quotes odd names in its messages; the whole path arrived as one argument.
    assert out["cats"][0] == [1, f"cat: '/x; touch {marker}': No such file or directory\n"]
    for rc, err in out["cats"]:
        assert rc == 1
        assert err.endswith(": No such file or directory\n")
    assert out["echoed"] == [*out["paths"], "", "*", "~", "$HOME"]


def test_closed_port_is_refused_fast(lab: Lab) -> None:
    out = _scenario(lab, "refused")
    assert out["kind"] == "refused"
    assert out["message"] == (
        "ssh root@127.0.0.1: the gateway refused the connection (ssh: connect to host "
        f"127.0.0.1 port {CLOSED_PORT}: Connection refused); check that sshd runs there "
        "and the port is right (Port in ~/.ssh/config or ssh option Port=N)"
    )
    assert out["seconds"] < 1.0
    assert out["leftovers"] == []


def test_silent_listener_times_out_within_connect_timeout(lab: Lab) -> None:
    out = _scenario(lab, "tarpit")
    assert out["accepted"] >= 1
    assert out["kind"] == "timeout"
    assert out["seconds"] < 2.0 + 1.0
    assert out["message"].startswith("ssh root@127.0.0.1: no SSH answer within ")
    assert out["leftovers"] == []


def test_wrong_key_is_an_auth_failure(lab: Lab) -> None:
    out = _scenario(lab, "auth")
    assert out["kind"] == "auth"
    assert out["detail"] == "root@127.0.0.1: Permission denied (publickey)."
    assert out["leftovers"] == []


def test_verbose_log_gets_ssh_debug_output_and_errors_still_classify(lab: Lab) -> None:
    out = _scenario(lab, "verbose_auth")
    assert out["kind"] == "auth"
    assert out["detail"].splitlines()[-1] == "root@127.0.0.1: Permission denied (publickey)."
    assert out["first_line"] == "earlier run"
    assert out["debug_lines"] > 10
    assert out["leftovers"] == []


def test_lost_master_is_replaced_on_the_next_run(lab: Lab) -> None:
    out = _scenario(lab, "reconnect")
    assert out == {"rc": 0, "new_dir": True, "first_dir_exists": False, "leftovers": []}


def test_unknown_host_key_is_a_hostkey_failure(lab: Lab) -> None:
    out = _scenario(lab, "hostkey")
    assert out["kind"] == "hostkey"
    assert out["detail"] == (
        f"No ED25519 host key is known for [127.0.0.1]:{SSHD_PORT} and you have requested "
        "strict checking.\nHost key verification failed."
    )
    assert out["leftovers"] == []


def test_close_stops_the_master_and_removes_the_control_dir(lab: Lab) -> None:
    out = _scenario(lab, "close")
    assert out["before"]["dir_mode"] == "0o700"
    assert out["before"]["socket"] is True
    assert len(out["before"]["leftovers"]) == 1
    assert out["after"]["dir_exists"] is False
    assert out["after"]["master_returncode"] is not None
    assert out["after"]["leftovers"] == []
    assert out["after"]["run_after_close"] == (
        "gateway (root@127.0.0.1): the connection was already closed"
    )
    assert out["after"]["ctx_rc"] == 0
    assert out["after"]["ctx_dir_exists"] is False


def test_hanging_command_is_cut_at_its_timeout(lab: Lab) -> None:
    out = _scenario(lab, "hang")
    assert out["timed_out"] is True
    assert out["returncode"] is None
    assert 1.0 <= out["seconds"] < 1.5
    assert out["remote_still_running"] == []
    assert out["after"] == [0, "still here\n"]
    assert out["leftovers"] == []


if __name__ == "__main__":
    print(json.dumps(SCENARIOS[sys.argv[1]](json.loads(sys.argv[2]))))
