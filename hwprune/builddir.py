"""The build directory: one folder holds everything a run produces.

Writes are staged: a step builds its outputs in a temporary folder next to the build
directory and moves them in only when the step has succeeded, so a failure never leaves a
half-written output. A folder that exists, is not empty and was not made by hwprune is never
written into (it may hold the user's files).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from hwprune import __version__
from hwprune.errors import HwpruneError

MARKER = ".hwprune"


def check_writable(out_dir: Path) -> None:
    """Refuse an existing, non-empty folder that hwprune did not create, or a file (also one
    standing where a parent folder would have to be)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise HwpruneError(f"{out_dir} is a file; pass a directory with -o")
    for parent in out_dir.parents:
        if parent.exists() and not parent.is_dir():
            raise HwpruneError(f"{out_dir}: {parent} is a file; pass a directory with -o")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / MARKER).exists():
        raise HwpruneError(
            f"{out_dir} exists and is not an hwprune build directory; choose a new or empty -o DIR"
        )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def remove_stale_stages(out_dir: Path) -> None:
    """Remove staging folders beside ``out_dir`` left by a run that was killed (SIGKILL, a
    crash): their names carry the process id, and that process no longer exists."""
    prefix = f".{out_dir.name}.staging-"
    if not out_dir.parent.is_dir():
        return
    for p in out_dir.parent.glob(prefix + "*"):
        pid = p.name[len(prefix) :].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            shutil.rmtree(p, ignore_errors=True)


@contextlib.contextmanager
def staged(out_dir: Path) -> Iterator[Path]:
    """Yield an empty staging folder; on success move its entries into ``out_dir``.

    Entries replace those of the same name (a re-run of a step); others are left alone.
    """
    out_dir = Path(out_dir)
    check_writable(out_dir)
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_stages(out_dir)
        prefix = f".{out_dir.name}.staging-{os.getpid()}-"
        stage = Path(tempfile.mkdtemp(prefix=prefix, dir=out_dir.parent))
    except OSError as e:
        raise HwpruneError(
            f"{out_dir}: cannot create the build directory there ({e.strerror}: "
            f"{e.filename}); choose a writable -o DIR"
        ) from None
    try:
        yield stage
        out_dir.mkdir(exist_ok=True)
        (out_dir / MARKER).write_text(f"hwprune {__version__}\n")
        for entry in sorted(stage.iterdir()):
            target = out_dir / entry.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
            os.replace(entry, target)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def write_files(root: Path, files: dict[str, str]) -> None:
    """Write {relative path: text} under root (used inside a staging folder)."""
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file beside it: a reader sees the old
    file or the new one, never half of it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
