"""The network lab: Linux network namespaces shaped like the field deployment."""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import secrets
import shutil
import signal
import string
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from k8sreach.lab import _configs as C
from k8sreach.lab import _daemons, _faults, _wiring
from k8sreach.lab import _plan as P
from k8sreach.lab._proc import (
    LabError,
    kill_pids,
    netns_argv,
    run,
    run_all,
    stop,
    wait_until,
)

LOG = logging.getLogger(__name__)

_HERE = Path(__file__).resolve().parent
_STANDIN_SOURCE = _HERE / "kube_proxy_standin.c"
_NETNS_ETC = Path("/etc/netns")
_NETNS_RUN = Path("/run/netns")
_STANDINS = ("good", "segfault", "panic")
# Bytes appended to the good stand-in: it still runs, but its checksum no longer matches.
_MISMATCH_TAIL = b"\0k8sreach-lab: this copy differs from the original\n"

_BUILD_WAIT = 15.0
# Hosts that run kube-proxy style NAT: the gateway and the DNS proxy.
_KP_HOSTS = ("gateway", "dnsproxy")
_ACTIVE: set[Lab] = set()
_ACTIVE_LOCK = threading.Lock()
_SIGTERM_INSTALLED = False


class Lab:
    """A lab deployment: office LAN, gateway, DNS proxy, node and pods in network namespaces.

    Use it as a context manager: entering builds it, leaving tears it down, also on errors.
    """

    client_ip = P.CLIENT_IP
    gateway_ip = P.GATEWAY_IP
    gateway_node_ip = P.GATEWAY_NODE_IP
    dns_proxy_ip = P.DNS_PROXY_IP
    dns_proxy_node_ip = P.DNS_PROXY_NODE_IP
    node_ip = P.NODE_IP
    office_cidr = P.OFFICE_CIDR
    node_cidr = P.NODE_CIDR
    office_router_ip = P.OFFICE_ROUTER_IP
    node_router_ip = P.NODE_ROUTER_IP
    wrong_hop_ip = P.WRONG_HOP_IP
    service_cidr = P.SERVICE_CIDR
    pod_cidr = P.POD_CIDR
    pod_block = P.POD_BLOCK
    cluster_domain = P.CLUSTER_DOMAIN
    service = P.MYSQL_READ.name
    namespace = P.MYSQL_READ.namespace
    service_port_name = P.MYSQL_READ.port_name
    service_ip = P.MYSQL_READ.cluster_ip
    service_port = P.MYSQL_READ.port
    service_fqdn = f"{P.MYSQL_READ.name}.{P.MYSQL_READ.namespace}.svc.{P.CLUSTER_DOMAIN}"
    headless_fqdn = f"mysql.default.svc.{P.CLUSTER_DOMAIN}"
    stale_service_ip = P.STALE_SERVICE_IP
    service_chain = P.MYSQL_READ.svc_chain
    endpoint_chain = P.MYSQL_READ.sep_chain
    service_ports = P.SERVICE_PORTS
    pod_name = P.MYSQL_POD
    pod_ip = P.MYSQL_POD_IP
    pod_port = P.MYSQL_PORT
    mysql_banner = P.MYSQL_BANNER
    kube_dns_ip = P.KUBE_DNS_IP
    kube_dns_port = 53
    kube_dns_pod_ip = P.KUBE_DNS_POD_IP
    bgp_as = P.BGP_AS
    bad_peer_as = P.BAD_PEER_AS
    gateway_bgp_protocol = P.GATEWAY_BGP_PROTOCOL
    node_bgp_protocol = P.NODE_BGP_PROTOCOL
    kube_proxy_path = P.KUBE_PROXY_PATH
    kube_proxy_version = P.KUBE_PROXY_VERSION
    ssh_dest = f"root@{P.GATEWAY_IP}"
    reference_ssh_dest = f"root@{P.NODE_IP}"

    def __init__(self) -> None:
        alphabet = string.ascii_lowercase + string.digits
        self.suffix = "".join(secrets.choice(alphabet) for _ in range(6))
        self.ns = {role: f"{P.NS_PREFIX}{self.suffix}-{role}" for role in P.ROLES}
        self.dir = Path(tempfile.gettempdir()) / f"k8sr-{self.suffix}"
        self.timings: dict[str, float] = {}
        self.kube_proxy_sha256 = ""
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._all_procs: list[subprocess.Popen[bytes]] = []
        self._faults: list[str] = []
        self._built = False
        self._torn_down = False
        self._mysql_read_record = P.MYSQL_READ.cluster_ip
        self._tools: list[tuple[list[str], subprocess.Popen[bytes]]] = []

    # ---- paths other code reads ------------------------------------------------------------

    @property
    def ssh_identity(self) -> str:
        """Return the private key that logs in as root on the gateway and the node."""
        return str(self.dir / "ssh" / "id_ed25519")

    @property
    def known_hosts(self) -> str:
        """Return the known_hosts file holding the gateway's and the node's host keys."""
        return str(self.dir / "ssh" / "known_hosts")

    @property
    def ssh_options(self) -> dict[str, str]:
        """Return ssh -o options that make ssh trust exactly the lab's host keys.

        They are what `k8sreach doctor --ssh-option` takes; k8sreach sets BatchMode and
        LogLevel itself, so they are not among them (ssh_argv adds them for plain ssh).
        """
        return {
            "UserKnownHostsFile": self.known_hosts,
            "GlobalKnownHostsFile": "/dev/null",
            "StrictHostKeyChecking": "yes",
            "IdentitiesOnly": "yes",
        }

    @property
    def gateway_bird_socket(self) -> str:
        """Return the gateway's BIRD control socket (``/run/bird/bird.ctl`` over SSH)."""
        return str(self._view("gateway") / "run" / "bird" / "bird.ctl")

    @property
    def node_bird_socket(self) -> str:
        """Return the node's BIRD control socket (``/run/bird/bird.ctl`` over SSH)."""
        return str(self._view("node") / "run" / "bird" / "bird.ctl")

    @property
    def gateway_kube_proxy_file(self) -> str:
        """Return the lab file that is ``/usr/local/bin/kube-proxy`` in the gateway's view."""
        return str(self._view("gateway") / "bin" / "kube-proxy")

    @property
    def gateway_sysctl_conf(self) -> str:
        """Return the lab file that is ``/etc/sysctl.conf`` in the gateway's view."""
        return str(self._view("gateway") / "etc" / "sysctl.conf")

    @property
    def client_resolv_conf(self) -> str:
        """Return the resolv.conf that ``ip netns exec`` shows the client as /etc/resolv.conf."""
        return str(_NETNS_ETC / self.ns["client"] / "resolv.conf")

    # ---- public API ----------------------------------------------------------------------

    def __enter__(self) -> Lab:
        self.build()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.teardown()

    def build(self) -> None:
        """Build the whole lab and wait until it is healthy; on failure tear down and raise."""
        if self._built or self._torn_down:
            raise LabError("a Lab object can be built once; create a new Lab")
        _register(self)
        started = time.monotonic()
        steps = [
            ("creating the lab directory", lambda: self.dir.mkdir(mode=0o700)),
            ("starting gcc and ssh-keygen", self._start_tools),
            ("creating network namespaces", self._add_netns),
            ("wiring namespaces", lambda: _wiring.wire(self)),
            ("writing kube-proxy rules", self._load_rules),
            ("building kube-proxy stand-ins and SSH keys", self._finish_tools),
            ("writing configuration", self._write_files),
            ("starting daemons", lambda: _daemons.start_all(self)),
            ("waiting for BGP", lambda: self.wait_route(present=True, timeout=_BUILD_WAIT)),
        ]
        for step, action in steps:
            began = time.monotonic()
            try:
                action()
            except BaseException as exc:
                LOG.debug("lab build failed while %s", step, exc_info=True)
                self.teardown()
                if isinstance(exc, LabError):
                    raise LabError(f"lab build failed while {step}: {exc}") from exc
                if isinstance(exc, Exception):
                    raise LabError(f"lab build failed while {step}: {exc!r}") from exc
                raise
            self.timings[f"build: {step}"] = time.monotonic() - began
        self._built = True
        self.timings["build"] = time.monotonic() - started
        LOG.info("lab %s built in %.2f s", self.suffix, self.timings["build"])

    def teardown(self) -> None:
        """Stop every lab process, delete the namespaces and files; safe to call repeatedly."""
        if self._torn_down:
            return
        started = time.monotonic()
        problems: list[str] = []
        # Each stage runs even if an earlier one failed: nothing may be left behind.
        for stage in (self._stop_all, self._delete_netns, self._remove_netns_etc):
            try:
                stage()
            except Exception as exc:  # report it, then go on cleaning up
                problems.append(f"{stage.__name__}: {exc}")
        shutil.rmtree(self.dir, ignore_errors=True)
        self._torn_down = True
        _unregister(self)
        self.timings["teardown"] = time.monotonic() - started
        left = [n for n in self._all_ns() if (_NETNS_RUN / n).exists()]
        if left or problems:
            LOG.warning("lab %s teardown left %s: %s", self.suffix, left, problems)

    def run(
        self, host: str, argv: Sequence[str], timeout: float = 10, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run argv in a host's network namespace; return it (text, captured, not checked).

        A command still running after ``timeout`` seconds is killed and TimeoutExpired raised.
        """
        return subprocess.run(
            netns_argv(self._netns(host), argv),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=None if input is not None else subprocess.DEVNULL,
        )

    def client_argv(self, argv: Sequence[str]) -> list[str]:
        """Return argv wrapped to run in the client's namespace."""
        return netns_argv(self.ns["client"], argv)

    def ssh_argv(self, dest: str | None = None, remote: Sequence[str] = ()) -> list[str]:
        """Return an ssh command line (to run in the client) for the gateway or ``dest``."""
        argv = ["ssh", "-i", self.ssh_identity, "-o", "BatchMode=yes", "-o", "LogLevel=ERROR"]
        for key, value in self.ssh_options.items():
            argv += ["-o", f"{key}={value}"]
        return [*argv, dest or self.ssh_dest, *remote]

    def birdc(self, host: str, *args: str) -> subprocess.CompletedProcess[str]:
        """Run birdc against the gateway's or the node's BIRD; return it (not checked)."""
        sockets = {"gateway": self.gateway_bird_socket, "node": self.node_bird_socket}
        if host not in sockets:
            raise LabError(f"no BIRD on {host!r}; BIRD runs on 'gateway' and 'node'")
        return run(["birdc", "-s", sockets[host], *args], check=False)

    def inject(self, fault: str) -> None:
        """Inject one fault; returns once its effect is in place."""
        if fault not in _faults.FAULTS:
            raise LabError(f"unknown fault {fault!r}; known faults: {', '.join(_faults.FAULTS)}")
        if self._faults:
            raise LabError(f"fault {self._faults[0]!r} is active; heal() before injecting another")
        if not self._built or self._torn_down:
            raise LabError("the lab is not built")
        started = time.monotonic()
        self._faults.append(fault)
        _faults.inject(self, fault)
        self.timings[f"inject {fault}"] = time.monotonic() - started

    def heal(self) -> None:
        """Undo the active fault and wait until the lab is healthy again."""
        if not self._faults:
            return
        fault = self._faults[0]
        started = time.monotonic()
        _faults.heal(self, fault)
        self._faults.clear()
        self.timings[f"heal {fault}"] = time.monotonic() - started

    def faults(self) -> list[str]:
        """Return the names of the faults currently injected."""
        return list(self._faults)

    def wait_route(self, present: bool, timeout: float = _BUILD_WAIT) -> None:
        """Wait until the gateway's kernel has (or lacks) the BGP route for the pod block."""
        state = "has" if present else "no longer has"
        wait_until(
            lambda: self._gateway_has_route() == present,
            f"the gateway's kernel that {state} the BGP route {self.pod_block} (proto bird)",
            timeout,
            self._view("gateway") / "bird.log",
        )

    # ---- internals used by _faults -------------------------------------------------------

    def _netns(self, host: str) -> str:
        """Return the netns name of a host role, or raise LabError for an unknown role."""
        try:
            return self.ns[host]
        except KeyError:
            raise LabError(f"unknown host {host!r}; hosts: {', '.join(self.ns)}") from None

    def _view(self, host: str) -> Path:
        """Return the lab directory holding a host's files (its mount view root for SSH)."""
        return self.dir / host

    def _ip(self, host: str, commands: Sequence[str], check: bool = True) -> None:
        """Run ``ip -batch`` commands in a host's namespace."""
        run(
            ["ip", "-n", self.ns[host], "-batch", "-"],
            input="\n".join(commands) + "\n",
            check=check,
        )

    def _sysctls(self, host: str, values: dict[str, Any]) -> None:
        """Set sysctls in a host's namespace."""
        pairs = [f"{k}={v}" for k, v in values.items()]
        run(netns_argv(self.ns[host], ["sysctl", "-q", "-w", *pairs]))

    def _run_checked(self, host: str, argv: Sequence[str]) -> None:
        """Run argv in a host's namespace; a failure raises LabError."""
        run(netns_argv(self.ns[host], argv))

    def _iptables(self, host: str, rules: str) -> None:
        """Replace a host's nat and filter tables and forget its tracked connections."""
        run(netns_argv(self.ns[host], ["iptables-restore"]), input=rules)
        # Connections tracked under the old rules would keep their old NAT decision.
        run(netns_argv(self.ns[host], ["conntrack", "-F"]), check=False)

    def _gateway_has_route(self) -> bool:
        """Return whether the gateway's kernel holds the pod block route installed by BIRD."""
        argv = ["ip", "-n", self.ns["gateway"], "-o", "route", "show", self.pod_block]
        proc = run([*argv, "proto", "bird"], check=False)
        return bool(proc.stdout.strip())

    def _write_node_bird(self, **kwargs: Any) -> None:
        """Rewrite the node's bird.conf (healthy unless told otherwise)."""
        view = self._view("node")
        (view / "bird.conf").write_text(C.node_bird_conf(view / "bird.log", **kwargs))

    def _install_kube_proxy(self, variant: str) -> None:
        """Put a stand-in at /usr/local/bin/kube-proxy in the gateway's view (atomically)."""
        target = Path(self.gateway_kube_proxy_file)
        tmp = target.with_name(".kube-proxy.tmp")
        shutil.copyfile(self.dir / "bin" / f"kube-proxy-{variant}", tmp)
        tmp.chmod(0o755)
        os.replace(tmp, target)

    def _start_daemon(self, key: str) -> None:
        """(Re)start one of the lab's daemons and wait until it serves."""
        _daemons.start(self, key)

    def _stop_daemon(self, key: str) -> None:
        """Stop one of the lab's daemons and wait until it is gone."""
        proc = self._procs.pop(key, None)
        if proc is not None:
            stop(proc)

    # ---- build steps ---------------------------------------------------------------------

    def _all_ns(self) -> list[str]:
        """Return every netns name of this lab."""
        return list(self.ns.values())

    def _add_netns(self) -> None:
        """Create all of the lab's network namespaces."""
        run(["ip", "-batch", "-"], input="".join(f"netns add {n}\n" for n in self._all_ns()))

    def _load_rules(self) -> None:
        """Load the healthy kube-proxy rules on the gateway and the DNS proxy."""
        rules = P.kube_proxy_rules()
        run_all([(netns_argv(self.ns[h], ["iptables-restore"]), rules) for h in _KP_HOSTS])

    def _start_tools(self) -> None:
        """Start the compilers and key generators in parallel (awaited by _finish_tools)."""
        (self.dir / "bin").mkdir()
        (self.dir / "ssh").mkdir()
        jobs = []
        for variant in _STANDINS:
            out = self.dir / "bin" / f"kube-proxy-{variant}"
            jobs.append(
                ["gcc", "-O1", f"-DSTANDIN_{variant.upper()}", "-o", str(out), str(_STANDIN_SOURCE)]
            )
        keys = {"client": self.dir / "ssh" / "id_ed25519"}
        for host in ("gateway", "node"):
            self._view(host).mkdir()
            keys[host] = self._view(host) / "ssh_host_ed25519_key"
        for name, path in keys.items():
            comment = f"k8sreach-lab-{name}"
            jobs.append(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)]
            )
        for argv in jobs:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
            )
            self._tools.append((argv, proc))

    def _finish_tools(self) -> None:
        """Wait for the compilers and key generators; derive the mismatching stand-in."""
        failures = []
        for argv, proc in self._tools:
            try:
                out, _ = proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                failures.append(f"{argv[0]} did not finish")
                continue
            if proc.returncode != 0:
                failures.append(f"{' '.join(argv)!r}: {out.decode(errors='replace').strip()}")
        if failures:
            raise LabError("; ".join(failures))
        good = (self.dir / "bin" / "kube-proxy-good").read_bytes()
        self.kube_proxy_sha256 = hashlib.sha256(good).hexdigest()
        mismatch = self.dir / "bin" / "kube-proxy-mismatch"
        mismatch.write_bytes(good + _MISMATCH_TAIL)
        mismatch.chmod(0o755)

    def _write_files(self) -> None:
        """Write the hosts' mount views, daemon configs, known_hosts and resolv.conf."""
        ssh = self.dir / "ssh"
        lines = []
        for host, ip in (("gateway", self.gateway_ip), ("node", self.node_ip)):
            view = self._view(host)
            for sub in (
                "run/sshd",
                "run/bird",
                "etc/sysctl.d",
                "etc/systemd/system",
                "bin",
                "home",
            ):
                (view / sub).mkdir(parents=True, exist_ok=True)
            (view / "run").chmod(0o755)
            (view / "run" / "sshd").chmod(0o755)
            (view / "etc" / "sysctl.conf").write_text(C.HEALTHY_SYSCTL_CONF)
            (view / "etc" / "hostname").write_text(f"{host}\n")
            (view / "etc" / "sysctl.d" / f"99-k8sreach-{host}.conf").write_text(
                C.forwarding_sysctl_file(host)
            )
            # Debian links this name to ../sysctl.conf, so that file is read in the 99- slot.
            (view / "etc" / "sysctl.d" / "99-sysctl.conf").symlink_to("../sysctl.conf")
            unit = view / "etc" / "systemd" / "system" / "kube-proxy.service"
            unit.write_text(C.kube_proxy_unit(host))
            (view / "sshd_config").write_text(
                C.sshd_config(
                    ip, view / "ssh_host_ed25519_key", ssh / "id_ed25519.pub", view / "sshd.pid"
                )
            )
            pub = (view / "ssh_host_ed25519_key.pub").read_text().split()
            lines.append(f"{ip} {pub[0]} {pub[1]}\n")
            shutil.copyfile(self.dir / "bin" / "kube-proxy-good", view / "bin" / "kube-proxy")
            (view / "bin" / "kube-proxy").chmod(0o755)
        (ssh / "known_hosts").write_text("".join(lines))
        gw = self._view("gateway")
        (gw / "bird.conf").write_text(C.gateway_bird_conf(gw / "bird.log"))
        self._write_node_bird()
        for host in ("dnsproxy", P.KUBE_DNS_POD, P.MYSQL_POD):
            self._view(host).mkdir(exist_ok=True)
        self._write_resolv_conf()

    def _write_resolv_conf(self) -> None:
        """Give the client its own /etc/resolv.conf through ip netns exec's /etc/netns."""
        target = Path(self.client_resolv_conf)
        for _ in range(3):
            try:
                _NETNS_ETC.mkdir(mode=0o755, exist_ok=True)
                target.parent.mkdir(exist_ok=True)
                target.write_text(C.resolv_conf())
                return
            except FileNotFoundError:
                continue  # another lab removed an empty /etc/netns just now; make it again
        raise LabError(f"cannot create {target}")

    def _delete_netns(self) -> None:
        """Kill what still runs in the lab's namespaces and delete them."""
        existing = [n for n in self._all_ns() if (_NETNS_RUN / n).exists()]
        for name in existing:
            _kill_netns_pids(name)
        if existing:
            commands = "".join(f"netns del {n}\n" for n in existing)
            proc = run(["ip", "-force", "-batch", "-"], input=commands, check=False)
            if proc.returncode != 0:
                raise LabError(proc.stderr.strip())

    def _remove_netns_etc(self) -> None:
        """Remove the client's /etc/netns entry, and /etc/netns itself once it is empty."""
        shutil.rmtree(_NETNS_ETC / self.ns["client"], ignore_errors=True)
        # Labs in other processes share /etc/netns, so the one that made it may not be the last
        # to leave; whoever leaves it empty removes it (_write_resolv_conf copes with the race).
        try:
            _NETNS_ETC.rmdir()
        except OSError:
            pass  # another lab uses it now, or it is gone already

    def _stop_all(self) -> None:
        """Stop every process the lab started: TERM to all, then KILL what lingers."""
        procs = [p for p in self._all_procs if p.poll() is None]
        for proc in procs:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass
        deadline = time.monotonic() + 1.5
        for proc in procs:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                stop(proc, timeout=1.0)
        self._procs.clear()


def _kill_netns_pids(name: str) -> None:
    """Kill every process still inside network namespace ``name``."""
    proc = run(["ip", "netns", "pids", name], check=False)
    pids = [int(p) for p in proc.stdout.split() if p.isdigit() and int(p) != os.getpid()]
    kill_pids(pids)


def leftovers() -> list[str]:
    """Return the names of network namespaces that carry the lab's prefix."""
    try:
        names = sorted(p.name for p in _NETNS_RUN.iterdir())
    except FileNotFoundError:
        return []
    return [n for n in names if n.startswith(P.NS_PREFIX)]


def remove_leftovers(names: Sequence[str]) -> None:
    """Kill the processes in the named lab namespaces and delete them (for cleanup tools)."""
    for name in names:
        if not name.startswith(P.NS_PREFIX):
            raise LabError(f"{name!r} is not a lab namespace (prefix {P.NS_PREFIX!r})")
    for name in names:
        _kill_netns_pids(name)
        run(["ip", "netns", "del", name], check=False)
        shutil.rmtree(_NETNS_ETC / name, ignore_errors=True)


def _register(lab: Lab) -> None:
    """Track a lab for teardown at exit or on SIGTERM."""
    global _SIGTERM_INSTALLED
    with _ACTIVE_LOCK:
        _ACTIVE.add(lab)
        if _SIGTERM_INSTALLED or threading.current_thread() is not threading.main_thread():
            return
        previous = signal.getsignal(signal.SIGTERM)

        def on_sigterm(signum: int, frame: Any) -> None:
            _teardown_all()
            if callable(previous):
                previous(signum, frame)
            elif previous == signal.SIG_IGN:
                return
            else:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                os.kill(os.getpid(), signal.SIGTERM)

        signal.signal(signal.SIGTERM, on_sigterm)
        _SIGTERM_INSTALLED = True


def _unregister(lab: Lab) -> None:
    """Stop tracking a torn-down lab."""
    with _ACTIVE_LOCK:
        _ACTIVE.discard(lab)


def _teardown_all() -> None:
    """Tear down every lab still active (at exit or on SIGTERM)."""
    with _ACTIVE_LOCK:
        labs = list(_ACTIVE)
    for lab in labs:
        try:
            lab.teardown()
        except Exception as exc:  # keep tearing down the others
            print(f"k8sreach.lab: teardown of {lab.suffix} failed: {exc}", file=sys.stderr)


atexit.register(_teardown_all)
