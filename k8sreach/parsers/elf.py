"""ELF header reading (is this binary for this machine?) and uname -m to ELF names."""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass

from k8sreach.parsers.errors import ParseError

LOG = logging.getLogger(__name__)

ELF_MAGIC = b"\x7fELF"

# e_machine values (elf.h) for the architectures Kubernetes nodes run on, and a few more.
_MACHINES = {
    2: "sparc",
    3: "i386",
    8: "mips",
    20: "ppc",
    21: "ppc64",
    22: "s390",
    40: "arm",
    43: "sparcv9",
    50: "ia64",
    62: "x86_64",
    183: "aarch64",
    243: "riscv",
    258: "loongarch",
}
_TYPES = {0: "NONE", 1: "REL", 2: "EXEC", 3: "DYN", 4: "CORE"}
_UNAME = {
    "x86_64": "x86_64",
    "amd64": "x86_64",
    "i386": "i386",
    "i486": "i386",
    "i586": "i386",
    "i686": "i386",
    "x86": "i386",
    "aarch64": "aarch64",
    "arm64": "aarch64",
    "aarch64_be": "aarch64",
    "riscv64": "riscv64",
    "riscv32": "riscv32",
    "ppc64le": "ppc64le",
    "ppc64": "ppc64",
    "ppc": "ppc",
    "s390x": "s390x",
    "s390": "s390",
    "mips64": "mips64",
    "mips": "mips",
    "loongarch64": "loongarch64",
    "ia64": "ia64",
    "sparc64": "sparcv9",
}


@dataclass(frozen=True)
class ElfInfo:
    """What the first bytes of an ELF file say about it."""

    cls: int  # 32 or 64
    endianness: str  # "little" or "big"
    machine: str  # "x86_64", "aarch64", "arm", "i386", "riscv64", "ppc64le", "s390x", ...
    type: str  # "EXEC" (static or non-PIE), "DYN" (PIE or shared object), "REL", "CORE"
    machine_code: int  # raw e_machine
    osabi: int


def _machine_name(code: int, cls: int, endianness: str) -> str:
    """Return the uname-style name for e_machine, refined by class and byte order."""
    name = _MACHINES.get(code, f"unknown-{code}")
    if name == "ppc64" and endianness == "little":
        return "ppc64le"
    if name == "s390" and cls == 64:
        return "s390x"
    if name == "riscv":
        return f"riscv{cls}"
    if name == "loongarch":
        return f"loongarch{cls}"
    if name == "mips" and cls == 64:
        return "mips64"
    return name


def parse_elf_header(first_64_bytes: bytes) -> ElfInfo | None:
    """Return the class, byte order, machine and type of an ELF header, None if not ELF."""
    data = bytes(first_64_bytes)
    if not data.startswith(ELF_MAGIC):
        return None
    if len(data) < 20:
        raise ParseError(f"ELF header truncated: {len(data)} bytes, need at least 20")
    cls = {1: 32, 2: 64}.get(data[4])
    endianness = {1: "little", 2: "big"}.get(data[5])
    if cls is None or endianness is None:
        raise ParseError(f"bad ELF identification: class byte {data[4]}, data byte {data[5]}")
    order = "<" if endianness == "little" else ">"
    e_type, e_machine = struct.unpack_from(order + "HH", data, 16)
    return ElfInfo(
        cls=cls,
        endianness=endianness,
        machine=_machine_name(e_machine, cls, endianness),
        type=_TYPES.get(e_type, f"0x{e_type:04x}"),
        machine_code=e_machine,
        osabi=data[7],
    )


def uname_to_elf_machine(uname_m: str) -> str:
    """Return the ElfInfo.machine name that matches `uname -m` (armv7l -> arm)."""
    name = uname_m.strip().lower()
    if name in _UNAME:
        return _UNAME[name]
    if name.startswith("arm"):
        return "arm"  # armv6l, armv7l, armv8l (32-bit userland)
    return name


def elf_matches_machine(info: ElfInfo, uname_m: str) -> bool:
    """Return whether a binary with this header is built for the `uname -m` machine."""
    return info.machine == uname_to_elf_machine(uname_m)
