"""What the sweep tests share: a tiny base, writing a sweep file, reading runs.log."""

from __future__ import annotations

import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
# A sweep's start: digits with short training (a point takes seconds); TINY adds a tiny MLP.
SHORT = """
base = "digits.toml"
[config.train]
epochs = 2
[config.prune]
finetune_epochs = 1
"""
TINY = SHORT + "[config.model]\nhidden = [8]\n"


def write_sweep(folder: Path, body: str, name: str = "sweep.toml") -> Path:
    """A sweep file in ``folder``, with user_models.py beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(HERE / "user_models.py", folder / "user_models.py")
    p = folder / name
    p.write_text(body)
    return p


def runs(out: Path) -> list[str]:
    """The point keys of runs.log, one per task start."""
    log = out / "runs.log"
    return [line.split()[0] for line in log.read_text().splitlines()] if log.is_file() else []
