"""Run a test file again as a throw-away ordinary user (instructors rarely grade as root)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from grading import sandbox
from grading.intake import remove_tree
from grading.sandbox import REPO


def run_as_ordinary_user(test_file: Path, select: str) -> None:
    """Run the tests of ``test_file`` matching ``-k select`` as a throw-away user; fail on any failure."""
    if os.geteuid() != 0:
        pytest.skip("already running as an ordinary user: the tests above were the check")
    if shutil.which("useradd") is None or shutil.which("setpriv") is None:
        pytest.skip("useradd/setpriv missing: cannot make a throw-away user")
    closed = [str(p) for p in [REPO, *REPO.parents] if not p.stat().st_mode & 0o001]
    if closed:  # e.g. a clone in `mktemp -d` (0700): another user cannot reach the venv
        pytest.skip(f"{closed[0]} is closed to other users: clone into a readable folder to test as one")
    user = "cnn-grade-test"
    if subprocess.run(["id", "-u", user], capture_output=True).returncode != 0:
        made = subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                               user], capture_output=True, text=True)
        if made.returncode != 0:
            pytest.skip(f"cannot add a throw-away user: {made.stderr.strip()}")
    uid = subprocess.run(["id", "-u", user], capture_output=True, text=True).stdout.strip()
    work = Path(tempfile.mkdtemp(prefix="cnn-as-user-", dir="/tmp"))  # pytest's own folders are root's
    os.chown(work, int(uid), int(uid))
    # the interpreter may live under root's home (pyenv): the user sees that installation and
    # nothing else of /root, through a mount namespace of its own (what a readable install gives)
    base = str(Path(sys.base_prefix).resolve())
    view = [sandbox.BWRAP, "--dev-bind", "/", "/", "--die-with-parent"]
    if base.startswith("/root/"):
        view += ["--perms", "0755", "--tmpfs", "/root"]
        for folder in sandbox._ancestors([base]):
            view += ["--perms", "0755", "--dir", folder] if folder != "/root" else []
        view += ["--ro-bind", base, base]
    command = view + ["--", "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--reset-env",
                      "--", "env", f"PATH={Path(sys.executable).parent}:/usr/bin:/bin", f"HOME={work}",
                      f"TMPDIR={work}", f"PYTHONPATH={REPO}", "HYPOTHESIS_PROFILE=ci",
                      sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(REPO),
                      f"--basetemp={work / 'pytest'}", str(test_file), "-k", select]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=work)
    finally:
        remove_tree(work)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "skipped" not in done.stdout, done.stdout[-2000:]
