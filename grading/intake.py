"""What of a submission folder is taken in, and how: names checked, files copied under caps, never a link.

A submission folder comes from students (through nbgrader's exchange, an LMS download, an
unzip): names may not be UTF-8, files may be links, FIFOs, devices or sparse giants, folders may
nest thousands deep. Only the folder's own top-level regular files are taken, each opened with
``O_NOFOLLOW`` and checked on the open descriptor (apparent size and allocated blocks both under
:data:`FILE_BYTES`), at most :data:`MAX_FILES` of them and :data:`TOTAL_BYTES` in all; everything
else is named in a message and left behind. :func:`remove_tree` deletes a tree of any depth
without recursion and without following links.
"""

from __future__ import annotations

import os
import stat
import unicodedata
from pathlib import Path

FILE_BYTES = 16 << 20  # one file, apparent or allocated size
TOTAL_BYTES = 48 << 20  # all files of a submission together (notebooks included)
MAX_FILES = 64
CHUNK = 1 << 20


def shown(name: str | bytes) -> str:
    """``name`` fit for a message or a terminal: invalid UTF-8 and control characters as ``?``/escapes."""
    if isinstance(name, str):
        name = name.encode("utf-8", "surrogateescape")
    text = name.decode("utf-8", "replace")
    return "".join(c if unicodedata.category(c)[0] != "C" else f"\\x{ord(c):02x}" for c in text)[:120]


def unsafe_name(name: str) -> str | None:
    """Why ``name`` (a file or folder name from a submission) cannot be used as it is; None when it can."""
    raw = name.encode("utf-8", "surrogateescape")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return f"the name {shown(name)!r} is not valid UTF-8 (rename it and resubmit)"
    if any(unicodedata.category(c)[0] == "C" for c in name):
        return f"the name {shown(name)!r} contains control characters"
    if name.startswith("-") or name in (".", "..") or "/" in name:
        return f"the name {shown(name)!r} may not start with '-' or be '.' or '..'"
    return None


def linked_folder(folder: Path, root: Path) -> str | None:
    """A message when ``folder`` or a folder between it and ``root`` is a symbolic link, else None."""
    current = folder
    while current != root and current != current.parent:
        if current.is_symlink():
            return (f"the submission folder {shown(current.name)!r} is a link, not a folder: it was not "
                    "graded and scores 0. Submit the files themselves.")
        current = current.parent
    return None


def read_file(dir_fd: int, name: str, budget: int) -> tuple[bytes, str | None]:
    """The bytes of the regular file ``name`` (in the folder open as ``dir_fd``), or (b"", why not).

    The file is opened without following a link and judged by what was opened: a regular file
    whose apparent size and allocated blocks are both at most :data:`FILE_BYTES` and ``budget``.
    """
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    except OSError:
        return b"", f"{shown(name)} is a link or cannot be read; it was left out"
    with os.fdopen(fd, "rb") as source:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return b"", f"{shown(name)} is not a regular file; it was left out"
        size = max(info.st_size, info.st_blocks * 512)
        if size > min(FILE_BYTES, budget):
            return b"", (f"{shown(name)} takes {size} bytes, more than the {min(FILE_BYTES, budget)} a file "
                         "may take here; it was left out")
        data = source.read(info.st_size + 1)
    if len(data) > info.st_size:
        return b"", f"{shown(name)} grew while it was read; it was left out"
    return data, None


def copy_file(dir_fd: int, name: str, targets: list[Path], budget: int) -> tuple[int, str | None]:
    """Copy the regular file ``name`` (see :func:`read_file`) to each of ``targets``; (bytes, None) or
    (0, why it was left behind)."""
    data, why = read_file(dir_fd, name, budget)
    if why:
        return 0, why
    for target in targets:
        target.write_bytes(data)
        target.chmod(0o644)
    return len(data), None


def entries(folder: Path) -> list[tuple[str, bool]]:
    """(name, is a plain folder) for every entry of ``folder``, sorted, links never followed."""
    with os.scandir(folder) as found:
        return sorted((e.name, e.is_dir(follow_symlinks=False)) for e in found)


def remove_tree(path: Path) -> None:
    """Delete ``path`` and everything under it, at any depth, never following a link; errors ignored.

    Walks with one open folder at a time (``..`` to go back up), so neither Python's recursion
    limit, nor the open-files limit, nor the length limit of a path stops it.
    """
    try:
        fd = _enter(str(path), None)
    except OSError:
        _unlink(str(path))
        return
    names: list[str] = []  # the folders between ``path`` and the current one
    stuck: set[tuple[int, str]] = set()  # (depth, name) of folders that could not be entered or removed
    while True:
        sub = _empty_files(fd, len(names), stuck)
        if sub is not None:
            try:
                child = _enter(sub, fd)
            except OSError:
                stuck.add((len(names), sub))
                continue
            os.close(fd)
            fd, _ = child, names.append(sub)
            continue
        if not names:
            break
        parent = os.open("..", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd, name = parent, names.pop()
        try:
            os.rmdir(name, dir_fd=fd)
        except OSError:
            stuck.add((len(names), name))
    os.close(fd)
    try:
        os.rmdir(path)
    except OSError:
        pass


def _enter(name: str, dir_fd: int | None) -> int:
    """Open the folder ``name`` (never through a link); one its owner locked (a kernel's, as the same
    user) is opened up first."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
    try:
        return os.open(name, flags, dir_fd=dir_fd)
    except PermissionError:
        if os.path.islink(name if dir_fd is None else f"/proc/self/fd/{dir_fd}/{name}"):
            raise
        os.chmod(name, 0o700, dir_fd=dir_fd)
        return os.open(name, flags, dir_fd=dir_fd)


def _empty_files(fd: int, depth: int, stuck: set) -> str | None:
    """Unlink everything but folders in the folder open as ``fd``; the name of a folder left to enter."""
    sub = None
    with os.scandir(fd) as found:
        for entry in found:
            if entry.is_dir(follow_symlinks=False):
                if sub is None and (depth, entry.name) not in stuck:
                    sub = entry.name
            else:
                try:
                    os.unlink(entry.name, dir_fd=fd)
                except OSError:
                    pass
    return sub


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
