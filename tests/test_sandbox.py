"""The kernel's sandbox from the inside, without nbgrader: who it runs as, what it sees, what it may write.

Each probe starts the kernelspec's own command line (``grading.sandbox.bwrap_argv``, inside the
grading process's private runtime tmpfs of ``runtime_wrapper``) with ``python -c PROBE`` in place
of ``-m ipykernel_launcher`` and reads back what the probe found as JSON. Small limits keep it
fast. The tests run as root (CI: setpriv to 65534, a pids cgroup) and, through
:func:`test_the_sandbox_holds_for_an_ordinary_user`, as a throw-away ordinary user (a user
namespace, ``RLIMIT_NPROC``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from grading import sandbox
from grading.cgroups import PidsCgroup
from grading.sandbox import HOME, REPO, Limits
from tests._as_user import run_as_ordinary_user

LIMITS = Limits(scratch_bytes=8 << 20, runtime_bytes=8 << 20, processes=32, memory=1 << 30)
pytestmark = pytest.mark.skipif(not Path(sandbox.BWRAP).exists(), reason="bubblewrap is not installed")


def run_probe(tmp_path: Path, code: str, files: dict[str, str] | None = None,
              fonts: Path | None = None) -> dict:
    """Run ``code`` as the kernel would run (``fonts``: a font list to bind in); the JSON object it
    prints last."""
    scratch, runtime = tmp_path / "scratch", tmp_path / "runtime"
    scratch.mkdir()
    runtime.mkdir()
    for name, text in (files or {}).items():
        (scratch / name).write_text(text)
        (scratch / name).chmod(0o644)
    scratch.chmod(0o755)
    (tmp_path / "host_secret.txt").write_text("the gradebook")
    groups = [g for g in [PidsCgroup.create(LIMITS.processes)] if g]
    argv = sandbox.bwrap_argv(scratch, runtime, sandbox.write_etc(tmp_path / "etc"), LIMITS, groups, fonts)
    argv = argv[:argv.index("-m")] + ["-c", code]
    share = ["/bin/sh", "-c", '[ "$(id -u)" != 0 ] || chown 65534:65534 "$1"; shift; exec "$@"', "sh",
             str(runtime)]  # what SandboxExecute does for the kernel's sockets
    try:
        done = subprocess.run(sandbox.runtime_wrapper(runtime, LIMITS) + share + argv, capture_output=True,
                              text=True, timeout=120)
    finally:
        for group in groups:
            group.remove()
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


LOOK = r"""
import json, os, sys
found = {"uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(), "cwd": os.getcwd(),
         "path0": sys.path[0] if sys.path else None}
status = dict(line.split(":\t", 1) for line in open("/proc/self/status").read().splitlines() if ":\t" in line)
found.update({k: status[k].strip() for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs")})
def writable(path):
    try:
        open(path, "w").close()
        return True
    except OSError:
        return False
found["proc_sys_writable"] = [p for p in ("/proc/sys/kernel/core_pattern", "/proc/sys/vm/drop_caches",
                                           "/proc/sysrq-trigger") if writable(p)]
found["dev"] = sorted(os.listdir("/dev"))
found["etc"] = sorted(os.listdir("/etc"))
found["home"] = sorted(os.listdir("/home"))
found["root_entries"] = sorted(os.listdir("/"))
found["exists"] = [p for p in sys.argv[1:] if os.path.lexists(p)]
found["root_writable"] = writable("/planted")
os.chdir(os.environ["HOME"])
found["own_file"] = open("data.txt").read()
import numpy, cnnlib.nn
found["numpy"], found["cnnlib"] = numpy.__file__, cnnlib.nn.__file__
print(json.dumps(found))
"""


def test_the_kernel_is_unprivileged_and_sees_an_allowlist(tmp_path):
    secret = tmp_path / "host_secret.txt"
    hidden = [str(secret), "/etc/shadow", "/srv", "/var", "/root/.bashrc", str(REPO / "solutions"),
              str(REPO / "grading"), str(REPO / "gradebook.db"), str(Path.home() / ".ssh"), "/dev/sda",
              "/dev/mem"]
    code = LOOK.replace("sys.argv[1:]", repr(hidden))
    found = run_probe(tmp_path, code, {"data.txt": "mine", "numpy.py": "raise SystemExit('student numpy')",
                                       "cnnlib.py": "raise SystemExit('student cnnlib')",
                                       "sitecustomize.py": "raise SystemExit('student site')"})
    assert (found["uid"], found["gid"]) == (65534, 65534) and set(found["groups"]) <= {65534}
    assert int(found["CapEff"], 16) == int(found["CapPrm"], 16) == int(found["CapAmb"], 16) == 0
    if os.geteuid() == 0:  # the kernel's uid is the host's 65534: nothing left to gain
        assert int(found["CapBnd"], 16) == 0
    assert found["NoNewPrivs"] == "1"
    assert found["proc_sys_writable"] == []
    assert set(found["dev"]) <= {"null", "zero", "full", "random", "urandom", "tty", "ptmx", "pts", "shm",
                                 "fd", "stdin", "stdout", "stderr", "core", "mqueue"}
    etc = {"fonts", "group", "hostname", "ld.so.cache", "passwd"}
    assert {"group", "hostname", "passwd"} <= set(found["etc"]) <= etc
    assert found["home"] == ["student"]
    assert found["exists"] == [] and not found["root_writable"]
    assert found["cwd"] == "/" and found["path0"] != ""  # started outside the student's folder, -P
    assert found["own_file"] == "mine"  # ... and its own files are still there by relative path
    assert found["numpy"].startswith(sys.prefix) and found["cnnlib"].startswith("/opt/course/cnnlib")


FILL = r"""
import json, os, threading, time
from pathlib import Path
found = {}
for place in (os.environ["HOME"], "/tmp", "/dev/shm", RUNTIME):
    written = 0
    try:
        for i in range(64):
            with open(f"{place}/fill-{i}", "wb") as handle:
                handle.write(b"x" * (1 << 20))
            written += 1
    except OSError as error:
        found[place] = [written, error.strerror]
threads = 0
try:
    for _ in range(200):
        threading.Thread(target=time.sleep, args=(5,), daemon=True).start()
        threads += 1
except RuntimeError:
    pass
found["threads"] = threads
print(json.dumps(found))
"""


def test_every_writable_place_and_the_process_count_are_capped(tmp_path):
    found = run_probe(tmp_path, FILL.replace("RUNTIME", repr(str(tmp_path / "runtime"))))
    for place in (HOME, "/tmp", "/dev/shm", str(tmp_path / "runtime")):
        assert place in found, f"{place}: 64 MB written under an 8 MB cap"
        assert found[place][0] <= 8 and found[place][1] in ("No space left on device", "File too large")
    assert found["threads"] < LIMITS.processes
    assert not any(tmp_path.glob("runtime/fill-*"))  # the runtime tmpfs went with the grading process


def test_the_sandbox_holds_for_an_ordinary_user():
    """This file again, as a throw-away user (instructors rarely grade as root)."""
    run_as_ordinary_user(Path(__file__), "not ordinary_user")


FONTS = r"""
import io, json, logging, os
log = io.StringIO()
logging.basicConfig(level=logging.DEBUG, stream=log)
import matplotlib.font_manager as fm, matplotlib.pyplot as plt
fig, ax = plt.subplots()
ax.set_title("stride 2"); fig.savefig(io.BytesIO(), format="png")
folder = os.environ["MPLCONFIGDIR"]
known = fm.fontManager.ttflist + fm.fontManager.afmlist
unreadable = [f.fname for f in known if not os.access(f.fname, os.R_OK)]
try:
    open(os.path.join(folder, os.listdir(folder)[0]), "a").close()
    poisoned = True
except OSError:
    poisoned = False
print(json.dumps({"log": log.getvalue(), "fonts": len(fm.fontManager.ttflist), "unreadable": unreadable,
                  "files": os.listdir(folder), "poisoned": poisoned}))
"""


def test_the_kernels_share_one_font_list_built_on_the_host(tmp_path):
    """matplotlib's font list is built once for a grading process's kernels, in their environment:
    a kernel loads it instead of scanning the fonts (a quarter second each), every font it names is
    readable inside the sandbox, and no student can change it for the next one."""
    from grading.fonts import FontList

    fonts = FontList(tmp_path / "matplotlib", sandbox.kernel_env()).path()
    assert fonts is not None and fonts.name.startswith("fontlist-v")
    found = run_probe(tmp_path, FONTS, fonts=fonts)
    assert f"Using fontManager instance from {sandbox.ENV['MPLCONFIGDIR']}/{fonts.name}" in found["log"]
    assert found["fonts"] > 0 and found["unreadable"] == [] and found["files"] == [fonts.name]
    assert "not found" not in found["log"] and not found["poisoned"]


def test_the_kernel_loads_cnnlib_compiled_by_the_grader(tmp_path):
    """The kernel may not write bytecode; the grader writes cnnlib's, and the kernel loads it from the
    read-only copy instead of compiling every module as it starts."""
    sandbox.compile_library()
    code = ("import json, os, sys, cnnlib.nn, cnnlib.functional\n"
            "mods = [m for n, m in sys.modules.items()\n"
            "        if n.startswith('cnnlib') and getattr(m, '__file__', None)]\n"
            "missing = [m.__name__ for m in mods if not os.path.isfile(m.__cached__)]\n"
            "where = os.path.dirname(mods[0].__file__)\n"
            "print(json.dumps({'n': len(mods), 'where': where, 'missing': missing}))\n")
    found = run_probe(tmp_path, code)
    assert found["n"] > 5 and found["where"].startswith(sandbox.LIBRARY)
    assert found["missing"] == []


def test_a_venv_linked_in_from_elsewhere_still_starts_the_kernel(tmp_path, monkeypatch):
    """A course whose .venv is a link to a venv elsewhere: the sandbox binds real paths only, so the
    kernel must be started as the real venv's python (and still inside the venv)."""
    venv = Path(sys.executable).parent.parent
    link = tmp_path / "course" / ".venv"
    link.parent.mkdir()
    link.symlink_to(venv.resolve())
    monkeypatch.setattr(sys, "executable", str(link / "bin" / Path(sys.executable).name))
    found = run_probe(tmp_path, "import json, sys, cnnlib.nn\nprint(json.dumps({'prefix': sys.prefix}))")
    assert found["prefix"] == str(venv.resolve())


def test_a_course_cloned_under_tmp_is_still_reachable(tmp_path, monkeypatch):
    """A clone made with ``mktemp -d`` puts the venv under /tmp: the writable /tmp tmpfs must be
    mounted before the read-only binds, or it hides the interpreter (``prlimit: failed to
    execute .../python``)."""
    venv = "/tmp/clone-xyz/.venv"
    monkeypatch.setattr(sandbox, "readonly_paths", lambda: ["/usr", venv])
    argv = sandbox._filesystem(tmp_path / "scratch", tmp_path / "runtime", tmp_path / "etc", LIMITS)
    tmpfs = max(i for i, arg in enumerate(argv) if arg == "--tmpfs")
    binds = [i for i, arg in enumerate(argv) if arg in ("--ro-bind", "--bind")]
    assert tmpfs < min(binds), "a bind comes before a tmpfs that may cover it"
    assert argv[argv.index(venv) - 1] == "--ro-bind"


def test_folders_made_for_binds_inside_tmp_are_read_only(tmp_path, monkeypatch):
    """The folders bwrap makes inside the writable /tmp to hold a bind (a clone's venv) must not
    become the student's own: each such tree is a read-only tmpfs."""
    venv = "/tmp/clone-xyz/.venv"
    monkeypatch.setattr(sandbox, "readonly_paths", lambda: ["/usr", venv])
    argv = sandbox._filesystem(tmp_path / "scratch", tmp_path / "runtime", tmp_path / "etc", LIMITS)
    pairs = list(zip(argv, argv[1:]))
    assert ("--tmpfs", "/tmp/clone-xyz") in pairs and ("--remount-ro", "/tmp/clone-xyz") in pairs


PERSIST = r"""
import ctypes, ctypes.util, json, os, platform
libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
NR = {"x86_64": {"add_key": 248, "keyctl": 250, "mq_open": 240},
      "aarch64": {"add_key": 217, "keyctl": 219, "mq_open": 180}}[platform.machine()]
found = {}
# a key in the user key ring (-4, KEY_SPEC_USER_KEYRING): shared by every process of this uid
key = libc.syscall(NR["add_key"], b"user", b"hidden-inputs", b"x(4, 5) k(1, 1)", 15, -4)
found["add_key"] = [key, os.strerror(ctypes.get_errno())]
found["keyctl"] = [libc.syscall(NR["keyctl"], 0, -4, 0), os.strerror(ctypes.get_errno())]  # GET_KEYRING_ID
queue = libc.syscall(NR["mq_open"], b"leak", os.O_CREAT | os.O_RDWR, 0o600, None)
found["mq_open"] = [queue, os.strerror(ctypes.get_errno())]
found["getpid"] = os.getpid() > 0  # everything else still works
print(json.dumps(found))
"""


def test_no_key_ring_or_message_queue_outlives_the_kernel(tmp_path):
    """Both outlive every process without being files: the next kernel (or, for the host's uid
    65534, any ``nobody`` process) could read what this one left there."""
    found = run_probe(tmp_path, PERSIST)
    for call in ("add_key", "keyctl", "mq_open"):
        assert found[call] == [-1, "Operation not permitted"], (call, found[call])
    assert found["getpid"]


def test_the_seccomp_filter_refuses_exactly_its_calls_and_other_abis():
    """The filter run by a small BPF interpreter: the nine refused calls, x32 and 32-bit calls fail;
    the rest (and the same numbers on the other machine's ABI) pass."""
    import struct

    from grading import seccomp

    def run(program: bytes, nr: int, arch: int) -> int:
        insns = [struct.unpack("=HBBI", program[i:i + 8]) for i in range(0, len(program), 8)]
        pc, acc = 0, 0
        while True:
            code, jt, jf, k = insns[pc]
            if code == seccomp.LD_ABS_W:
                acc = {seccomp.NR: nr, seccomp.ARCH: arch}[k]
            elif code == seccomp.RET_K:
                return k
            elif code in (seccomp.JEQ_K, seccomp.JGE_K):
                taken = acc == k if code == seccomp.JEQ_K else acc >= k
                pc += jt if taken else jf
            pc += 1

    for machine, (arch, calls) in seccomp.ARCHES.items():
        program = seccomp.program(machine)
        for number in calls.values():
            assert run(program, number, arch) == seccomp.FAIL
        refused = set(calls.values())
        for number in range(0, 460):
            if number not in refused:
                assert run(program, number, arch) == seccomp.ALLOW, (machine, number)
        assert run(program, 0, 0x40000003) == seccomp.FAIL  # i386
    assert run(seccomp.program("x86_64"), 0x40000000 + 1, seccomp.ARCHES["x86_64"][0]) == seccomp.FAIL
