"""Runs the lit + FileCheck tests under tests/filecheck through rkc-opt."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

FILECHECK_DIR = Path(__file__).parent / "filecheck"
TESTS = sorted(p.name for p in FILECHECK_DIR.glob("*.mlir"))


@pytest.mark.parametrize("name", TESTS)
def test_filecheck(name: str) -> None:
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    lit = [sys.executable, "-c", "from lit.main import main; main()"]
    out = subprocess.run([*lit, "-v", str(FILECHECK_DIR / name)],
                         capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
