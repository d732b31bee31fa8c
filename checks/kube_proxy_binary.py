"""The `kube-proxy-binary` check."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from checks import _gateway
from k8sreach import check as facts
from k8sreach.check import Check
from k8sreach.context import RunContext
from k8sreach.parsers.elf import ElfInfo, elf_matches_machine, parse_elf_header
from k8sreach.parsers.errors import ParseError
from k8sreach.parsers.kube_proxy import VersionRun, classify_version_run, execstart_argv
from k8sreach.result import Finding, Hop, Status, failed, passed, warned

if TYPE_CHECKING:
    from k8sreach.remote import CommandResult

UNIT_FILES = (
    "/etc/systemd/system/kube-proxy.service",
    "/run/systemd/system/kube-proxy.service",
    "/lib/systemd/system/kube-proxy.service",
    "/usr/lib/systemd/system/kube-proxy.service",
)
DROP_IN_DIR = "/etc/systemd/system/kube-proxy.service.d"
_SHA = re.compile(r"^([0-9a-f]{64})\b")
# Run `kube-proxy --version` under a shell that reports how it ended. Run directly over
# SSH, a death by signal reaches the client only as ssh's own exit 255; the shell turns
# SIGSEGV into the status 139 a person sees. The path is the script's $0, never code.
_VERSION_SCRIPT = '"$0" --version; status=$?; echo "k8sreach-exit-status=$status" >&2; exit $status'
_STATUS_MARK = re.compile(r"^k8sreach-exit-status=(\d+)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Binary:
    """What was read about the binary on the gateway."""

    path: str
    found_by: str
    file_type: str | None  # "regular file", "directory", ... None when missing
    mode: str | None
    size: int | None
    elf: ElfInfo | None
    head: bytes
    machine: str | None
    sha256: str | None
    version: VersionRun | None
    expected_sha256: str | None
    expected_from: str | None
    reference_problem: str | None = None
    sha256_problem: str | None = None  # why sha256sum gave no checksum ("timed out after 2 s")
    not_run: str | None = None  # why --version was not run although the file is an ELF


def _copy_fix(b: Binary, reference: str | None) -> str:
    node = reference.split(":/", 1)[0] if reference else "<a node>"
    src = f"{node}:{b.path}"
    check = (
        f"   # must print {b.expected_sha256}"
        if b.expected_sha256
        else "   # compare with sha256sum of the node's copy"
    )
    return (
        "The binary on the gateway is corrupt: copy it again from a node, check it, and "
        "restart kube-proxy (on the gateway):\n"
        f"  scp {src} /tmp/kube-proxy.new\n"
        f"  sha256sum /tmp/kube-proxy.new{check}\n"
        f"  install -m 0755 /tmp/kube-proxy.new {b.path}\n"
        "  systemctl restart kube-proxy"
    )


def judge(b: Binary, reference: str | None = None) -> Finding:
    """Missing, not ELF, wrong architecture, not executable, checksum mismatch and SIGSEGV
    are failures; a Go panic is a crash of a sound binary, not corruption."""
    evidence: dict[str, Any] = {
        "path": b.path,
        "found_by": b.found_by,
        "file_type": b.file_type,
        "mode": b.mode,
        "size": b.size,
        "elf": None
        if b.elf is None
        else {"class": b.elf.cls, "machine": b.elf.machine, "type": b.elf.type},
        "gateway_machine": b.machine,
        "sha256": b.sha256,
        "expected_sha256": b.expected_sha256,
        "expected_from": b.expected_from,
        "version_run": None
        if b.version is None
        else {
            "kind": b.version.kind,
            "version": b.version.version,
            "signal": b.version.signal,
            "detail": b.version.detail,
        },
    }
    if b.reference_problem:
        evidence["reference_problem"] = b.reference_problem
    if b.sha256_problem:
        evidence["sha256_problem"] = b.sha256_problem
    if b.not_run:
        evidence["version_not_run"] = b.not_run
    kw = {"evidence": evidence}
    if b.file_type is None:
        return failed(
            f"no kube-proxy at {b.path} ({b.found_by})",
            remediation=f"Install kube-proxy at {b.path}, or give --kube-proxy-path.",
            **kw,
        )
    if b.file_type != "regular file":
        return failed(f"{b.path} is a {b.file_type}, not a program", **kw)
    mismatch = (
        b.expected_sha256 is not None and b.sha256 is not None and b.sha256 != b.expected_sha256
    )
    if b.elf is None:
        shown = b.head[:16].decode("ascii", errors="replace")
        return failed(
            f"{b.path} is not an ELF program (it starts with {shown!r}): the copy is corrupt",
            remediation=_copy_fix(b, reference),
            **kw,
        )
    if b.machine and not elf_matches_machine(b.elf, b.machine):
        return failed(
            f"{b.path} is built for {b.elf.machine}, but the gateway is {b.machine}",
            remediation=f"Copy the {b.machine} build of kube-proxy (same version as the "
            "cluster) to the gateway.",
            **kw,
        )
    if mismatch and b.sha256 and b.expected_sha256:
        return failed(
            f"{b.path} is corrupt: sha256 {b.sha256[:12]}... differs from "
            f"{b.expected_sha256[:12]}... ({b.expected_from})"
            + (f"; --version: {b.version.detail}" if b.version and b.version.kind != "ok" else ""),
            remediation=_copy_fix(b, reference),
            **kw,
        )
    if b.mode is not None and not int(b.mode, 8) & 0o111:
        return failed(
            f"{b.path} is not executable (mode {b.mode})",
            remediation=f"On the gateway: chmod 0755 {b.path}",
            **kw,
        )
    run = b.version
    if run is not None and run.kind == "segfault":
        return failed(
            f"kube-proxy --version dies with {run.detail}: the binary is corrupt",
            remediation=_copy_fix(b, reference),
            **kw,
        )
    if run is not None and run.kind == "go-panic":
        verified = b.expected_sha256 is not None and b.sha256 == b.expected_sha256
        sound = "its checksum matches" if verified else "it is a valid ELF program"
        return failed(
            f"kube-proxy --version panics ({run.detail}): a crash of a sound binary ({sound}), "
            "not corruption",
            remediation="This is a bug or a bad environment, not a bad copy: read the panic "
            f"(`{b.path} --version` on the gateway), check kube-proxy's flags and config, and "
            "install a release without the bug.",
            **kw,
        )
    if run is not None and run.kind == "killed" and run.signal is None:
        # Our own timeout cut it: a hung binary, or only a slow or loaded gateway.
        return warned(f"kube-proxy --version {run.detail}; its state is unknown", **kw)
    if run is not None and run.kind != "ok":
        return failed(f"kube-proxy --version failed: {run.detail}", **kw)
    if run is None and b.not_run:
        return warned(
            f"{b.path} ({b.elf.machine} ELF) was not run ({b.not_run}); its state is unknown",
            **kw,
        )
    version = run.version if run else "unknown version"
    if b.expected_sha256 is not None and b.sha256 is None:
        return warned(
            f"sha256 of {b.path} could not be computed ({b.sha256_problem or 'no checksum'}): "
            "checksum not verified",
            remediation=f"On the gateway: sha256sum {b.path}   # must print {b.expected_sha256}",
            **kw,
        )
    if b.reference_problem:
        return warned(
            f"kube-proxy {version} at {b.path}, {b.elf.machine} ELF, but the checksum was not "
            f"compared: {b.reference_problem}",
            remediation="Fix --kube-proxy-reference (NODE or NODE:/PATH, reachable over SSH "
            "with a kube-proxy at that path), or give the expected checksum with "
            "--kube-proxy-sha256.",
            **kw,
        )
    if b.expected_sha256 is None:
        note = " (checksum not compared: give --kube-proxy-sha256 or --kube-proxy-reference)"
        return passed(f"kube-proxy {version} at {b.path}, {b.elf.machine} ELF{note}", **kw)
    return passed(f"kube-proxy {version} at {b.path}, sha256 matches {b.expected_from}", **kw)


class KubeProxyBinary(Check):
    """Checks the gateway's kube-proxy binary: found (flag, systemd unit, PATH), an ELF for
    the gateway's architecture, executable, sha256 against the expected one or a reference
    node, and what `kube-proxy --version` does (SIGSEGV means corrupt, a Go panic does not);
    --version runs only once the file is an executable ELF for the gateway's architecture."""

    id = "kube-proxy-binary"
    hop = Hop.GATEWAY
    order = 300
    needs = (facts.GATEWAY,)

    def run(self, ctx: RunContext) -> Finding:
        where = _gateway.label(ctx)
        located = _locate(ctx)
        if located is None:
            return Finding(
                Status.SKIP,
                "no kube-proxy binary found on the gateway (no systemd unit, not on PATH): give "
                "--kube-proxy-path if it runs from elsewhere",
                address=where,
            )
        path, found_by = located
        binary = _read(ctx, path, found_by)
        finding = judge(binary, ctx.settings.kube_proxy_reference)
        return Finding(
            finding.status, finding.summary, finding.evidence, finding.remediation, address=where
        )


def _locate(ctx: RunContext) -> tuple[str, str] | None:
    from k8sreach.remote import AccessError

    if ctx.settings.kube_proxy_path:
        return ctx.settings.kube_proxy_path, "--kube-proxy-path"
    for unit in UNIT_FILES:
        text = _gateway.read(ctx, unit)
        if text is None:
            continue
        combined = text.decode(errors="replace")
        try:
            drop_ins = ctx.gateway().glob(DROP_IN_DIR, ".conf", ctx.probe_timeout())
        except AccessError:
            drop_ins = []
        for extra in drop_ins:
            more = _gateway.read(ctx, extra)
            combined += "\n" + (more or b"").decode(errors="replace")
        argv = execstart_argv(combined)
        if argv:
            return argv[0], f"ExecStart of {unit}"
    which = _gateway.run(ctx, ["sh", "-c", "command -v kube-proxy"])
    path = which.text.strip()
    if which.returncode == 0 and path.startswith("/"):
        return path, "PATH"
    return None


def _read(ctx: RunContext, path: str, found_by: str) -> Binary:
    stat, head_run, uname, summed, expected = _gateway.parallel(
        lambda: _gateway.run(ctx, ["stat", "-L", "-c", "%F|%a|%s", "--", path]),
        lambda: _gateway.run(ctx, ["head", "-c", "64", "--", path]),
        lambda: _gateway.run(ctx, ["uname", "-m"]),
        lambda: _gateway.run(ctx, ["sha256sum", "--", path]),
        lambda: _expected(ctx, path),
    )
    file_type = mode = None
    size = None
    if stat.returncode == 0 and stat.text.count("|") == 2:
        file_type, mode, size_text = stat.text.strip().split("|")
        size = int(size_text) if size_text.isdigit() else None
    if file_type not in ("regular file", "regular empty file"):
        return Binary(
            path, found_by, file_type, mode, size, None, b"", None, None, None, None, None
        )
    file_type = "regular file"
    head = head_run.stdout
    try:
        elf = parse_elf_header(head)
    except ParseError:
        elf = None
    machine = uname.text.strip() or None
    match = _SHA.match(summed.text.strip())
    sha = match.group(1) if match else None
    sha_problem = None if sha else _sha256_problem(summed, ctx.probe_timeout())
    exp_sha, exp_from, problem = expected

    # Only a confirmed program is run: a script would run as one, and an ELF for another
    # architecture fails with ENOEXEC, after which sh reads the file as a script.
    version = None
    not_run = _why_not_run(elf, mode, machine)
    if elf is not None and not_run is None:
        # Run even a suspect binary's --version: how it dies is the diagnosis. It is the
        # one command here that executes something of the gateway's, and it changes nothing.
        ran = _gateway.run(ctx, ["sh", "-c", _VERSION_SCRIPT, path])
        if ran.timed_out or ran.returncode is None:
            version = VersionRun(
                "killed", None, None, f"did not finish within {ctx.probe_timeout():g} s"
            )
        else:
            marked = _STATUS_MARK.search(ran.err_text)
            status = int(marked.group(1)) if marked else ran.returncode
            stderr = _STATUS_MARK.sub("", ran.err_text).strip("\n")
            version = classify_version_run(status, ran.text, stderr)
    return Binary(
        path,
        found_by,
        file_type,
        mode,
        size,
        elf,
        head,
        machine,
        sha,
        version,
        exp_sha,
        exp_from,
        problem,
        sha_problem,
        not_run if elf is not None else None,
    )


def _why_not_run(elf: ElfInfo | None, mode: str | None, machine: str | None) -> str | None:
    """Return why the file must not be executed, or None when it is a runnable program."""
    if elf is None:
        return "not an ELF program"
    if mode is None or not mode.isdigit() or not int(mode, 8) & 0o111:
        return f"not executable (mode {mode})"
    if machine is None:
        return "the gateway's architecture is unknown: uname -m failed"
    if not elf_matches_machine(elf, machine):
        return f"built for {elf.machine}, the gateway is {machine}"
    return None


def _sha256_problem(summed: CommandResult, timeout: float) -> str:
    """Return why sha256sum gave no checksum, in a few words."""
    if summed.timed_out or summed.returncode is None:
        return f"sha256sum timed out after {timeout:g} s"
    said = next((ln.strip() for ln in summed.err_text.splitlines() if ln.strip()), "")
    return said[:200] or f"sha256sum exit {summed.returncode} without a checksum"


def _expected(ctx: RunContext, path: str) -> tuple[str | None, str | None, str | None]:
    """The checksum the binary must have: --kube-proxy-sha256, else the reference node's."""
    from k8sreach.remote import AccessError, SshHost

    if ctx.settings.kube_proxy_sha256:
        return ctx.settings.kube_proxy_sha256, "--kube-proxy-sha256", None
    ref = ctx.settings.kube_proxy_reference
    if not ref:
        return None, None, None
    dest, _, ref_path = ref.partition(":/")
    ref_path = "/" + ref_path if ref_path else path
    try:
        with SshHost(
            dest,
            identity=ctx.settings.ssh_identity,
            options=dict(ctx.settings.ssh_option),
            connect_timeout=ctx.probe_timeout(),
        ) as node:
            out = node.run(["sha256sum", "--", ref_path], ctx.probe_timeout())
    except AccessError as exc:
        return None, None, f"the reference node {dest} could not be read: {exc}"
    match = _SHA.match(out.text.strip())
    if not match:
        why = (
            f"did not finish within {ctx.probe_timeout():g} s"
            if out.timed_out
            else f"failed: {out.err_text.strip()[:200] or f'exit {out.returncode}'}"
        )
        return None, None, f"sha256sum of {ref_path} on {dest} {why}"
    return match.group(1), f"the reference {dest}:{ref_path}", None
