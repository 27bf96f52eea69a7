"""`pipebot …` as a real process with a clean environment, for tests of the command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def pipebot(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``pipebot ARGS`` in `tmp_path` with only `env` (plus PATH/HOME) set; a wide terminal
    keeps `doctor`'s table one line per row."""
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "COLUMNS": "240", **env},
    )
