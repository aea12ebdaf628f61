"""Private working directories for pulls that download files (CUR, FOCUS exports, Azure exports).

`<data_dir>/tmp/<kind>-<pid>-<random>` (the system's temporary directory without a data_dir), mode
0700. A directory left behind by a killed process (its pid no longer alive) is removed by the next
pull of any kind.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from pathlib import Path

from finops_pipeline.lake import pid_alive
from finops_pipeline.storage import work_dir


def work_root(data_dir: Path | str | None) -> Path:
    """`<data_dir>/tmp` (for a remote lake, in the local work directory, storage.work_dir)."""
    return work_dir(data_dir) / "tmp" if data_dir is not None else Path(tempfile.gettempdir()) / "finops-pipeline"


def remove_stale_workdirs(root: Path) -> list[Path]:
    """Working directories whose owner process is gone (killed, even with -9): removed."""
    removed = []
    if not root.is_dir():
        return removed
    for path in root.glob("*-*-*"):
        pid = path.name.split("-")[1]
        if path.is_dir() and pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def make_workdir(data_dir: Path | str | None, kind: str = "cur") -> Path:
    """`<root>/<kind>-<pid>-<random>`, mode 0700, after sweeping the ones dead processes left behind."""
    root = work_root(data_dir)
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        root.chmod(0o700)  # private, even if something else created it
    except OSError:
        pass
    remove_stale_workdirs(root)
    return Path(tempfile.mkdtemp(prefix=f"{kind}-{os.getpid()}-{secrets.token_hex(4)}-", dir=root))
