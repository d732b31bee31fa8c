"""`kube-proxy --version` run classification and systemd ExecStart= parsing."""

from __future__ import annotations

import pytest

from k8sreach.parsers.kube_proxy import (
    classify_version_run,
    execstart_argv,
    parse_systemd_execstart,
)


def test_version_output_is_ok():
    run = classify_version_run(0, "Kubernetes v1.29.3\n", "")

    assert (run.kind, run.version, run.signal, run.detail) == (
        "ok",
        "v1.29.3",
        None,
        "Kubernetes v1.29.3",
    )


def test_bare_segfault_from_subprocess_is_segfault():
    run = classify_version_run(-11, "", "")

    assert (run.kind, run.signal) == ("segfault", 11)
    assert run.detail == "exit -11: SIGSEGV, no Go stack trace"


def test_shell_segfault_exit_139_is_segfault(fixture_text):
    stderr = fixture_text("kube-proxy-version-shell-segfault.stderr.txt")

    run = classify_version_run(139, "", stderr)

    assert (run.kind, run.signal, run.version) == ("segfault", 11, None)
    assert run.detail == "exit 139: Segmentation fault (SIGSEGV), no Go stack trace"


def test_go_nil_pointer_panic_is_go_panic_not_segfault(fixture_text):
    run = classify_version_run(2, "", fixture_text("kube-proxy-version-go-panic.stderr.txt"))

    assert (run.kind, run.signal) == ("go-panic", 11)
    assert run.detail == (
        "exit 2: panic: runtime error: invalid memory address or nil pointer dereference "
        "[signal SIGSEGV: segmentation violation code=0x1 addr=0x18 pc=0x1c9f2a4]"
    )


def test_go_runtime_fatal_signal_is_go_panic(fixture_text):
    run = classify_version_run(2, "", fixture_text("kube-proxy-version-go-fatal-signal.stderr.txt"))

    assert run.kind == "go-panic"
    assert run.detail.startswith("exit 2: fatal error: unexpected signal during runtime execution")


def test_go_trace_wins_even_with_signal_exit_status(fixture_text):
    run = classify_version_run(-6, "", fixture_text("kube-proxy-version-go-panic.stderr.txt"))

    assert run.kind == "go-panic"


@pytest.mark.parametrize("returncode, signal", [(-9, 9), (137, 9), (-15, 15)])
def test_killed_by_outside_signal_is_killed(returncode, signal):
    run = classify_version_run(returncode, "", "")

    assert (run.kind, run.signal) == ("killed", signal)


def test_illegal_instruction_counts_as_a_crash():
    run = classify_version_run(132, "", "bash: line 1: 42 Illegal instruction kube-proxy\n")

    assert (run.kind, run.signal) == ("segfault", 4)
    assert run.detail == "exit 132: Illegal instruction (SIGILL), no Go stack trace"


def test_wrong_architecture_is_error_with_the_message():
    run = classify_version_run(
        126, "", "bash: ./kube-proxy: cannot execute binary file: Exec format error\n"
    )

    assert run.kind == "error"
    assert (
        run.detail == "exit 126: bash: ./kube-proxy: cannot execute binary file: Exec format error"
    )


def test_exit_zero_without_version_is_error():
    run = classify_version_run(0, "hello\n", "")

    assert (run.kind, run.version, run.detail) == (
        "error",
        None,
        "exit 0 but no Kubernetes version: hello",
    )


def test_systemd_unit_with_drop_in_reset_uses_last_execstart(fixture_text):
    unit = fixture_text("kube-proxy.service")

    assert parse_systemd_execstart(unit) == "/opt/k8s/bin/kube-proxy"
    assert execstart_argv(unit) == (
        "/opt/k8s/bin/kube-proxy",
        "--config=/etc/kube-proxy/config.yaml",
    )


def test_line_continuations_are_joined():
    unit = "[Service]\nExecStart=/usr/local/bin/kube-proxy \\\n  --config=/a.yaml \\\n  --v=2\n"

    assert execstart_argv(unit) == ("/usr/local/bin/kube-proxy", "--config=/a.yaml", "--v=2")


@pytest.mark.parametrize(
    "line, path",
    [
        ("ExecStart=-/usr/bin/kube-proxy --v=2", "/usr/bin/kube-proxy"),
        ("ExecStart=@/usr/bin/kube-proxy kube-proxy --v=2", "/usr/bin/kube-proxy"),
        ("ExecStart=+/usr/bin/kube-proxy", "/usr/bin/kube-proxy"),
        ("ExecStart=!!/usr/bin/kube-proxy", "/usr/bin/kube-proxy"),
        ("ExecStart=-!/usr/bin/kube-proxy", "/usr/bin/kube-proxy"),
        ('ExecStart="/opt/my dir/kube-proxy" --v=2', "/opt/my dir/kube-proxy"),
    ],
)
def test_execstart_prefixes_and_quotes(line, path):
    assert parse_systemd_execstart(f"[Service]\n{line}\n") == path


def test_reset_without_new_execstart_gives_none():
    assert parse_systemd_execstart("[Service]\nExecStart=/usr/bin/a\nExecStart=\n") is None


def test_execstart_outside_service_section_is_ignored():
    unit = "[Unit]\nExecStart=/wrong\n[Service]\nExecStartPre=/bin/true\nExecStart=/right\n"

    assert parse_systemd_execstart(unit) == "/right"


def test_systemctl_show_format():
    shown = (
        "ExecStart={ path=/usr/local/bin/kube-proxy ; argv[]=/usr/local/bin/kube-proxy "
        "--config=/a.yaml ; ignore_errors=no ; start_time=[n/a] ; stop_time=[n/a] ; "
        "pid=0 ; code=(null) ; status=0/0 }\n"
    )

    assert parse_systemd_execstart(shown) == "/usr/local/bin/kube-proxy"


def test_no_execstart_is_none():
    assert parse_systemd_execstart("[Unit]\nDescription=x\n") is None
