"""The chaos suite's short version (`make chaos` runs the full one): every scenario must survive."""

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(1900)
def test_quick_chaos_suite_survives(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "chaos.py"), "--quick", "--keep", str(tmp_path)],
                          capture_output=True, text=True, timeout=1800, cwd=ROOT)
    print(proc.stdout)  # the table, in the test log
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "all survived" in proc.stdout
