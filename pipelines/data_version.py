"""Record the source data's version with DVC: `dvc add data`, then push it to the configured remote."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from components.core.settings import REPO_ROOT


def track_data(data_dir: Path) -> str:
    """Update `data.dvc` for the repository's `data/` folder and push it to the default DVC remote.

    Returns:
        a one-line account of what was done (nothing for a folder outside the repository).
    """
    if data_dir.resolve() != REPO_ROOT / "data" or not (REPO_ROOT / ".dvc").is_dir():
        return f"data version not recorded: {data_dir} is not the DVC-tracked data/ of {REPO_ROOT}"
    for args in (["add", "--quiet", "data"], ["push", "--quiet"]):
        done = subprocess.run(
            [sys.executable, "-m", "dvc", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"`dvc {' '.join(args)}` failed: {done.stderr.strip() or done.stdout.strip()}")
    return "data version recorded in data.dvc and pushed to the DVC remote"
