"""The kernel's seccomp filter: no system call that leaves state behind for the next kernel.

Each kernel's processes, files and System V IPC are gone before the next is forked (see
:mod:`grading.zygote_inside`). Two kinds of kernel objects outlive every process without living
in a file: POSIX message queues (of the IPC namespace the zygote's kernels share) and key rings
(when grading as root the kernel is the host's uid 65534, whose user key ring every ``nobody``
process on the machine shares and which outlasts the grading). A student could pass the hidden
tests' inputs from one kernel to the next, or to a later assignment, through either. Nothing a
notebook needs uses them: their system calls fail with ``EPERM``.

The filter is classic BPF over ``struct seccomp_data`` that bubblewrap installs (``--seccomp FD``)
before it runs the kernel's command; it is inherited by every process the kernel starts. A system
call of another ABI than the machine's own (32-bit ``int 0x80`` or x32 on x86-64) fails likewise,
since its numbers differ.
"""

from __future__ import annotations

import errno
import platform
import struct
from pathlib import Path

# <linux/audit.h>, and each ABI's numbers (<asm/unistd_64.h>; asm-generic/unistd.h for arm64)
ARCHES = {
    "x86_64": (0xC000003E, {"mq_open": 240, "mq_unlink": 241, "mq_timedsend": 242, "mq_timedreceive": 243,
                            "mq_notify": 244, "mq_getsetattr": 245, "add_key": 248, "request_key": 249,
                            "keyctl": 250}),
    "aarch64": (0xC00000B7, {"mq_open": 180, "mq_unlink": 181, "mq_timedsend": 182, "mq_timedreceive": 183,
                             "mq_notify": 184, "mq_getsetattr": 185, "add_key": 217, "request_key": 218,
                             "keyctl": 219}),
}
X32_SYSCALL_BIT = 0x40000000

LD_ABS_W, JEQ_K, JGE_K, RET_K = 0x20, 0x15, 0x35, 0x06  # BPF_LD|BPF_W|BPF_ABS, BPF_JMP|BPF_JEQ|BPF_K, ...
NR, ARCH = 0, 4  # offsets in struct seccomp_data
ALLOW, FAIL = 0x7FFF0000, 0x00050000 | errno.EPERM  # SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO | EPERM


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def program(machine: str | None = None) -> bytes:
    """The filter for ``machine`` (``platform.machine()``): ``struct sock_filter`` instructions."""
    machine = machine or platform.machine()
    if machine not in ARCHES:
        raise RuntimeError(f"no seccomp filter for a {machine} machine (known: {', '.join(ARCHES)}): "
                           "grading.seccomp needs its system call numbers")
    arch, calls = ARCHES[machine]
    denied = sorted(calls.values())
    body = [_insn(LD_ABS_W, 0, 0, NR)]
    if machine == "x86_64":  # x32 calls carry this bit: refused as a whole
        body.append(_insn(JGE_K, len(denied) + 1, 0, X32_SYSCALL_BIT))
    for i, number in enumerate(denied):  # on a match, jump to FAIL past the later tests and ALLOW
        body.append(_insn(JEQ_K, len(denied) - i, 0, number))
    body.append(_insn(RET_K, 0, 0, ALLOW))
    body.append(_insn(RET_K, 0, 0, FAIL))
    # another ABI: straight to FAIL (the last instruction)
    head = [_insn(LD_ABS_W, 0, 0, ARCH), _insn(JEQ_K, 0, len(body) - 1, arch)]
    return b"".join(head + body)


def write_filter(path: Path) -> Path:
    """Write :func:`program` to ``path`` (read by bubblewrap, ``--seccomp``); ``path``."""
    path.write_bytes(program())
    path.chmod(0o644)
    return path
