"""The bundle leaves scipy out (desktop.utils.absent_scipy): what imports it still imports, a use says why not.

Run in an interpreter whose path is this venv's site-packages without scipy (a link farm), as the
bundle is: the real hivemind and transformers import through the placeholder."""

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import sys
from desktop.utils import absent_scipy
assert absent_scipy.install() and absent_scipy.install()  # twice: one finder
import hivemind  # imports scipy.optimize at package import
from transformers.loss.loss_utils import LOSS_MAPPING  # imports names from scipy.optimize
from scipy.optimize import linprog
try:
    linprog([1.0])
except RuntimeError as exc:
    print("refused:", exc)
print("finders:", sum(type(f).__name__ == "_Finder" for f in sys.meta_path))
"""


@pytest.fixture(scope="module")
def without_scipy(tmp_path_factory) -> Path:
    site = Path(sysconfig.get_paths()["purelib"])
    farm = tmp_path_factory.mktemp("site-without-scipy")
    for entry in site.iterdir():
        if not entry.name.startswith("scipy"):
            (farm / entry.name).symlink_to(entry)
    return farm


def _run(farm: Path, code: str) -> subprocess.CompletedProcess:
    # -S: no site-packages of its own; the farm and the checkout are the whole path
    return subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": f"{ROOT}:{farm}", "PATH": "/usr/bin:/bin"})


@pytest.mark.slow
def test_importers_of_scipy_import_and_a_use_is_a_clear_error(without_scipy):
    done = _run(without_scipy, PROBE)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "refused: scipy is not part of this build" in done.stdout
    assert "scipy.optimize.linprog" in done.stdout
    assert "finders: 1" in done.stdout


def test_without_the_placeholder_the_importers_fail(without_scipy):
    """The farm really has no scipy: what the placeholder is for."""
    done = _run(without_scipy, "import scipy.optimize")
    assert done.returncode != 0 and "No module named 'scipy'" in done.stderr


def test_a_real_scipy_is_left_alone():
    from desktop.utils import absent_scipy

    assert absent_scipy.install() is False  # this venv has scipy: nothing installed
    assert not any(type(f).__name__ == "_Finder" for f in sys.meta_path)
