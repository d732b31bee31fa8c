"""ELF header reading and uname -m mapping."""

from __future__ import annotations

import struct

import pytest

from k8sreach.parsers import ParseError
from k8sreach.parsers.elf import (
    ElfInfo,
    elf_matches_machine,
    parse_elf_header,
    uname_to_elf_machine,
)


def _header(cls: int, data: int, e_type: int, machine: int) -> bytes:
    order = "<" if data == 1 else ">"
    ident = b"\x7fELF" + bytes([cls, data, 1, 0]) + bytes(8)
    return ident + struct.pack(order + "HHI", e_type, machine, 1) + bytes(40)


def test_real_x86_64_pie_header(fixture_bytes):
    info = parse_elf_header(fixture_bytes("elf-header-x86_64-pie.bin"))

    assert info == ElfInfo(
        cls=64, endianness="little", machine="x86_64", type="DYN", machine_code=62, osabi=0
    )


@pytest.mark.parametrize(
    "cls, data, machine, name",
    [
        (2, 1, 183, "aarch64"),
        (1, 1, 40, "arm"),
        (1, 1, 3, "i386"),
        (2, 1, 243, "riscv64"),
        (2, 1, 21, "ppc64le"),
        (2, 2, 21, "ppc64"),
        (2, 2, 22, "s390x"),
        (2, 1, 258, "loongarch64"),
        (2, 1, 9999, "unknown-9999"),
    ],
)
def test_machine_names(cls, data, machine, name):
    info = parse_elf_header(_header(cls, data, 2, machine))

    assert info.machine == name
    assert info.cls == (64 if cls == 2 else 32)
    assert info.endianness == ("little" if data == 1 else "big")
    assert info.type == "EXEC"


def test_static_go_style_exec_type():
    assert parse_elf_header(_header(2, 1, 2, 62)).type == "EXEC"
    assert parse_elf_header(_header(2, 1, 0x1234, 62)).type == "0x1234"


def test_not_elf_is_none():
    assert parse_elf_header(b"#!/bin/sh\nexec kube-proxy\n") is None
    assert parse_elf_header(b"") is None
    assert parse_elf_header(b"<html>404 Not Found</html>") is None


def test_truncated_or_bad_identification_raises():
    with pytest.raises(ParseError, match="truncated: 8 bytes"):
        parse_elf_header(b"\x7fELF\x02\x01\x01\x00")
    with pytest.raises(ParseError, match="bad ELF identification"):
        parse_elf_header(_header(7, 1, 2, 62))


@pytest.mark.parametrize(
    "uname_m, machine",
    [
        ("x86_64", "x86_64"),
        ("amd64", "x86_64"),
        ("aarch64", "aarch64"),
        ("arm64", "aarch64"),
        ("armv7l", "arm"),
        ("armv6l", "arm"),
        ("i686", "i386"),
        ("riscv64", "riscv64"),
        ("ppc64le", "ppc64le"),
        ("s390x", "s390x"),
        ("sparc64", "sparcv9"),
        ("weird", "weird"),
    ],
)
def test_uname_to_elf_machine(uname_m, machine):
    assert uname_to_elf_machine(uname_m) == machine


def test_binary_for_another_architecture_does_not_match(fixture_bytes):
    info = parse_elf_header(fixture_bytes("elf-header-x86_64-pie.bin"))

    assert elf_matches_machine(info, "x86_64\n")
    assert not elf_matches_machine(info, "aarch64")
