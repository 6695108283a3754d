"""CSV output: contract formatting and atomic replacement of the source files."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd

from components.sources.ecommerce.generator.timeline import format_ts


def _formatted(df: pd.DataFrame) -> pd.DataFrame:
    """Timestamps as `YYYY-MM-DD HH:MM:SS`; integers stay integers and NULLs become empty fields."""
    out = df.copy()
    for column in out.columns:
        if column.endswith("_at"):
            out[column] = format_ts(out[column].to_numpy())
    return out


def write_tables(out_dir: Path, tables: dict[str, pd.DataFrame]) -> dict[str, int]:
    """Write each table to `<out_dir>/<name>.csv`, replacing an existing file atomically.

    Every file is first written to a temporary file in `out_dir` and only then moved into place, so a failure
    leaves the previous files untouched; other files in the folder are never touched.

    Returns:
        Rows written per table.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    staged: dict[str, str] = {}
    try:
        for name, df in tables.items():
            fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{name}.", suffix=".csv.tmp")
            staged[name] = tmp
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
                _formatted(df).to_csv(fh, index=False, lineterminator="\n")
            os.chmod(tmp, 0o644)
        for name, tmp in list(staged.items()):
            os.replace(tmp, out_dir / f"{name}.csv")
            del staged[name]
    finally:
        for tmp in staged.values():
            Path(tmp).unlink(missing_ok=True)
    return {name: len(df) for name, df in tables.items()}
