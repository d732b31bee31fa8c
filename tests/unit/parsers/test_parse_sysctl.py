"""Persisted sysctl precedence (procps `sysctl --system` order) and rp_filter arithmetic.

The expected values are the ones procps-ng 4.0.2 produced for the same files in a lab
namespace (tests/fixtures/procps-sysctl-system-probe.txt).
"""

from __future__ import annotations

import pytest

from k8sreach.parsers.sysctl import (
    effective_setting,
    normalize_key,
    parse_sysctl_conf,
    rp_filter_effective,
    rp_filter_meaning,
    sysctl_order,
)

FORWARD = "net.ipv4.ip_forward"


def test_files_sorted_by_basename_across_directories():
    files = [
        ("/etc/sysctl.d/99-a.conf", "net.ipv4.ip_forward = 1\n"),
        ("/usr/lib/sysctl.d/50-b.conf", "net.ipv4.ip_forward = 0\n"),
    ]

    setting = effective_setting(files, FORWARD)

    assert (setting.value, setting.source_path, setting.line_no) == (
        "1",
        "/etc/sysctl.d/99-a.conf",
        1,
    )
    assert setting.all_settings == (
        ("/usr/lib/sysctl.d/50-b.conf", 1, "0"),
        ("/etc/sysctl.d/99-a.conf", 1, "1"),
    )


def test_same_basename_in_etc_masks_run_and_usr_lib():
    files = [
        ("/usr/lib/sysctl.d/50-b.conf", "net.ipv4.ip_forward = 0\n"),
        ("/run/sysctl.d/50-b.conf", "net.ipv4.ip_forward = 0\n"),
        ("/etc/sysctl.d/50-b.conf", "net.ipv4.ip_forward = 1\n"),
    ]

    setting = effective_setting(files, FORWARD)

    assert (setting.value, setting.source_path) == ("1", "/etc/sysctl.d/50-b.conf")
    assert setting.all_settings == (("/etc/sysctl.d/50-b.conf", 1, "1"),)


def test_run_masks_usr_local_lib_and_usr_lib():
    files = [
        ("/run/sysctl.d/50-b.conf", "net.ipv4.ip_forward = 0\n"),
        ("/usr/local/lib/sysctl.d/50-b.conf", "net.ipv4.ip_forward = 1\n"),
        ("/usr/lib/sysctl.d/50-b.conf", "net.ipv4.ip_forward = 1\n"),
    ]

    assert effective_setting(files, FORWARD).value == "0"


def test_etc_sysctl_conf_is_read_last_and_wins():
    files = [
        ("/etc/sysctl.conf", "net.ipv4.ip_forward = 0\n"),
        ("/etc/sysctl.d/99-z.conf", "net.ipv4.ip_forward = 1\n"),
    ]

    setting = effective_setting(files, FORWARD)

    assert (setting.value, setting.source_path) == ("0", "/etc/sysctl.conf")


def test_systemd_flavor_does_not_read_etc_sysctl_conf():
    files = [
        ("/etc/sysctl.conf", "net.ipv4.ip_forward = 0\n"),
        ("/etc/sysctl.d/99-z.conf", "net.ipv4.ip_forward = 1\n"),
    ]

    setting = effective_setting(files, FORWARD, flavor="systemd")

    assert (setting.value, setting.source_path) == ("1", "/etc/sysctl.d/99-z.conf")


def test_debian_symlinked_99_sysctl_conf_is_read_twice():
    text = "net.ipv4.ip_forward = 1\n"
    files = [
        ("/etc/sysctl.conf", text),
        ("/etc/sysctl.d/99-sysctl.conf", text),
        ("/usr/lib/sysctl.d/50-b.conf", "net.ipv4.ip_forward = 0\n"),
    ]

    assert sysctl_order(path for path, _ in files) == [
        "/usr/lib/sysctl.d/50-b.conf",
        "/etc/sysctl.d/99-sysctl.conf",
        "/etc/sysctl.conf",
    ]
    assert effective_setting(files, FORWARD).value == "1"


def test_slash_keys_dash_prefix_spaces_and_non_conf_files():
    files = [
        (
            "/etc/sysctl.d/10-x.conf",
            "; comment\n# comment\n  net/ipv4/ip_forward=1\n"
            "-net.ipv4.conf.all.rp_filter   =   2  \n",
        ),
        ("/etc/sysctl.d/README", "net.ipv4.ip_forward = 0\n"),
        ("/etc/sysctl.d/20-y.conf.bak", "net.ipv4.ip_forward = 0\n"),
    ]

    forward = effective_setting(files, FORWARD)
    rp_filter = effective_setting(files, "net/ipv4/conf/all/rp_filter")

    assert (forward.value, forward.line_no) == ("1", 3)
    assert (rp_filter.key, rp_filter.value, rp_filter.ignore_errors) == (
        "net.ipv4.conf.all.rp_filter",
        "2",
        True,
    )


def test_explicit_key_beats_a_later_glob():
    files = [
        ("/etc/sysctl.d/05-exact.conf", "net.ipv4.conf.all.rp_filter = 1\n"),
        ("/etc/sysctl.d/10-glob.conf", "net.ipv4.conf.*.rp_filter = 2\n"),
    ]

    all_setting = effective_setting(files, "net.ipv4.conf.all.rp_filter")
    eth0 = effective_setting(files, "net.ipv4.conf.eth0.rp_filter")

    assert (all_setting.value, all_setting.from_glob) == ("1", False)
    assert all_setting.all_settings == (
        ("/etc/sysctl.d/05-exact.conf", 1, "1"),
        ("/etc/sysctl.d/10-glob.conf", 1, "2"),
    )
    assert (eth0.value, eth0.from_glob, eth0.source_path) == (
        "2",
        True,
        "/etc/sysctl.d/10-glob.conf",
    )


def test_dash_key_without_value_excludes_it_from_globs():
    files = [
        (
            "/etc/sysctl.d/10-glob.conf",
            "net.ipv4.conf.*.rp_filter = 2\n-net.ipv4.conf.lo.rp_filter\n",
        ),
    ]

    assert effective_setting(files, "net.ipv4.conf.lo.rp_filter").value is None
    assert effective_setting(files, "net.ipv4.conf.eth0.rp_filter").value == "2"


def test_last_assignment_in_a_file_wins():
    files = [("/etc/sysctl.d/30-twice.conf", "net.ipv4.ip_forward=1\nnet.ipv4.ip_forward=0\n")]

    setting = effective_setting(files, FORWARD)

    assert (setting.value, setting.line_no) == ("0", 2)


def test_unset_key_has_no_value():
    setting = effective_setting([("/etc/sysctl.d/1.conf", "vm.swappiness = 10\n")], FORWARD)

    assert (setting.value, setting.source_path, setting.line_no, setting.all_settings) == (
        None,
        None,
        None,
        (),
    )


def test_sysctl_order_ignores_other_directories_and_sorts_bytewise():
    paths = [
        "/etc/sysctl.d/b.conf",
        "/etc/sysctl.d/B.conf",
        "/lib/sysctl.d/a.conf",
        "/usr/lib/sysctl.d/a.conf",
        "/etc/sysctl.d/sub/c.conf",
        "/tmp/d.conf",
        "/etc/sysctl.d/../sysctl.d/10-k8s.conf",
    ]

    assert sysctl_order(paths) == [
        "/etc/sysctl.d/10-k8s.conf",
        "/etc/sysctl.d/B.conf",
        "/usr/lib/sysctl.d/a.conf",
        "/etc/sysctl.d/b.conf",
    ]


def test_unknown_flavor_raises():
    with pytest.raises(ValueError, match="unknown sysctl flavor"):
        sysctl_order([], flavor="busybox")


@pytest.mark.parametrize(
    "key, normalized",
    [
        ("net.ipv4.ip_forward", "net.ipv4.ip_forward"),
        ("net/ipv4/ip_forward", "net.ipv4.ip_forward"),
        ("net/ipv4/conf/enp3s0.200/forwarding", "net.ipv4.conf.enp3s0/200.forwarding"),
        ("net.ipv4.conf.enp3s0/200.forwarding", "net.ipv4.conf.enp3s0/200.forwarding"),
        (" kernel.domainname ", "kernel.domainname"),
    ],
)
def test_normalize_key(key, normalized):
    assert normalize_key(key) == normalized


def test_parse_sysctl_conf_keeps_values_with_inner_spaces():
    lines = parse_sysctl_conf("net.ipv4.tcp_rmem = 4096 87380 6291456\nnot an assignment\n")

    assert [(line.key, line.value) for line in lines] == [
        ("net.ipv4.tcp_rmem", "4096 87380 6291456")
    ]


@pytest.mark.parametrize(
    "all_value, iface_value, effective", [(0, 0, 0), (0, 1, 1), (1, 0, 1), (2, 1, 2), (0, 2, 2)]
)
def test_rp_filter_effective_is_the_maximum(all_value, iface_value, effective):
    assert rp_filter_effective(all_value, iface_value) == effective


def test_rp_filter_meaning():
    assert rp_filter_meaning(1).startswith("strict:")
    assert rp_filter_meaning(2).startswith("loose:")
    assert rp_filter_meaning(0).startswith("off:")
    assert rp_filter_meaning(7) == "unknown rp_filter mode 7"
