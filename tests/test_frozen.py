"""The bundle's one executable as interpreter and as app (desktop.utils.frozen), and the self-test."""

import json
import subprocess
import sys

import pytest

from desktop.utils.frozen import is_python_invocation, self_command

# what the bundle's entry point does, run by a real interpreter: the same code path, no bundle needed
ENTRY = ("import sys; from desktop.utils.frozen import is_python_invocation, run_as_python; "
         "assert is_python_invocation(['exe', *sys.argv[1:]]); sys.exit(run_as_python(sys.argv[1:]))")


def _as_bundle(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", ENTRY, *args], capture_output=True, text=True, timeout=60, **kw)


def test_started_with_python_flags_it_runs_code_like_python():
    done = _as_bundle("-I", "-S", "-B", "-u", "-X", "utf8", "-c",
                      "import sys; print(sys.argv); sys.stderr.write('err'); sys.exit(3)", "one", "two")
    assert done.returncode == 3
    assert done.stdout.strip() == "['-c', 'one', 'two']"
    assert done.stderr == "err"


def test_it_runs_a_file_as_main_with_its_arguments(tmp_path):
    script = tmp_path / "main.py"
    script.write_text("import sys\nif __name__ == '__main__':\n    print(sys.argv[1:])\n    raise SystemExit(0)\n")
    done = _as_bundle("-I", "-S", str(script), "x")
    assert done.returncode == 0
    assert done.stdout.strip() == "['x']"


def test_an_uncaught_error_is_a_traceback_and_exit_1():
    done = _as_bundle("-c", "raise ValueError('boom')")
    assert done.returncode == 1
    assert "ValueError: boom" in done.stderr


def test_bad_interpreter_arguments_exit_2():
    done = _as_bundle("-I")
    assert done.returncode == 2
    assert "needs -c CODE or a FILE" in done.stderr


@pytest.mark.parametrize("argv, python", [
    (["exe"], False), (["exe", "gui"], False), (["exe", "node", "-c"], False), (["exe", "--version"], False),
    (["exe", "-h"], False), (["exe", "-I", "-S", "-c", "x"], True), (["exe", "-c", "x"], True),
    (["exe", "-X", "utf8", "f.py"], True), (["exe", "-B", "-s", "-c", "from multiprocessing import x"], True),
])
def test_only_interpreter_flags_make_it_an_interpreter(argv, python):
    assert is_python_invocation(argv) is python


def test_children_are_started_through_the_same_cli():
    assert self_command("node", "--rounds", "1") == [sys.executable, "-m", "desktop.cli", "node", "--rounds", "1"]


@pytest.mark.slow
def test_self_test_passes_from_a_checkout(tmp_path):
    done = subprocess.run(self_command("self-test", "--json", "--keep", str(tmp_path)), capture_output=True,
                          text=True, timeout=900)
    report = json.loads(done.stdout)
    assert done.returncode == 0, report
    assert [c["name"] for c in report["checks"]] == ["sandbox", "gui", "services", "tiny round"]
    assert all(c["ok"] for c in report["checks"]), report["checks"]
    assert (tmp_path / "node" / "identity" / "swarm.pem").is_file()  # it really played, in its own data dir
