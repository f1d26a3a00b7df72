"""A package installed with an `rkc.plugins` entry point adds its pass to rkc-opt."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
RKC_OPT = [sys.executable, "-m", "rkc.opt"]

IR = """
func.func @main(%x: tensor<1x4xf32>) -> tensor<1x4xf32> {
  %r = nn.relu %x {rkc.name = "act1"} : (tensor<1x4xf32>) -> tensor<1x4xf32>
  func.return %r : tensor<1x4xf32>
}
"""


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory) -> Path:
    """Install the example plugin into a private directory (pip --target)."""
    target = tmp_path_factory.mktemp("plugin")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(HERE / "plugin_example")],
        check=True, capture_output=True)
    return target


def _run(args: list[str], env_path: Path | None, stdin: str = "") -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if env_path is not None:
        env["PYTHONPATH"] = str(env_path) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(RKC_OPT + args, input=stdin, capture_output=True, text=True, env=env)


def test_plugin_pass_is_listed_and_runs(plugin_path):
    help_text = _run(["--help"], plugin_path).stdout
    assert "example-strip-names" in help_text.replace("\n", "").replace(" ", "")
    out = _run(["-p", "example-strip-names"], plugin_path, IR)
    assert out.returncode == 0, out.stderr
    assert "nn.relu %x : " in out.stdout
    assert "act1" not in out.stdout


def test_without_plugin_the_pass_is_unknown():
    out = _run(["-p", "example-strip-names"], None, IR)
    assert out.returncode == 2
    assert "example-strip-names" in out.stderr
    assert "Traceback" not in out.stderr
