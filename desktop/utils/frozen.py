"""Running from a checkout or from the installed bundle (PyInstaller onedir): the few things that differ.

The bundle's executable, ``rl-swarm-desktop``, is the app, the node and the services
(``self_command``). A bundle carries no ``python`` binary: the sandbox runs candidate code with
``rl-swarm-python`` beside it (``sandbox_python``; a small second executable without the app's
runtime hooks), and ``rl-swarm-desktop`` itself does as well when that is missing: started with
Python's own flags (``-I -S -c CODE``, ``-I … FILE``) either behaves as ``python`` would
(``run_as_python``). Standard library only: this runs before anything else, for every sandboxed
program.
"""

from __future__ import annotations

import builtins
import io
import os
import runpy
import sys


FROZEN = bool(getattr(sys, "frozen", False))
# the flags our own code passes to an interpreter (sandbox, harness); a CLI argument never starts so
_NO_VALUE = frozenset({"-I", "-S", "-B", "-u", "-E", "-s", "-O"})
_WITH_VALUE = frozenset({"-X", "-W"})


def self_command(*args: str) -> list[str]:
    """argv that runs `rl-swarm ARGS` in a child process, from a checkout or from the bundle."""
    if FROZEN:
        return [sys.executable, *args]
    return [sys.executable, "-m", "desktop.cli", *args]


SANDBOX_PYTHON = "rl-swarm-python"


def sandbox_python() -> str:
    """The interpreter for sandboxed programs: this one from a checkout; in the bundle the small
    `rl-swarm-python` beside the app's executable when it is there (0.25 s less per start)."""

    here = os.path.realpath(sys.executable)  # a venv's symlink may sit in a dir nobody cannot enter
    if FROZEN:
        small = os.path.join(os.path.dirname(here), SANDBOX_PYTHON + (".exe" if os.name == "nt" else ""))
        if os.access(small, os.X_OK):
            return small
    return here


def is_python_invocation(argv: list[str]) -> bool:
    """True when the bundle was started as an interpreter (``exe -I -S -c …``), not as the app."""
    return len(argv) > 1 and (argv[1] in _NO_VALUE or argv[1] in _WITH_VALUE or argv[1] == "-c")


def run_as_python(args: list[str]) -> int:
    """Do what ``python ARGS`` would for the forms our code uses: flags, then ``-c CODE [arg…]``
    or ``FILE [arg…]``. Isolation flags have nothing to isolate here (a bundle has no site-packages
    and reads no PYTHON* variables), so they are accepted and skipped."""
    i = 0
    while i < len(args) and (args[i] in _NO_VALUE or args[i] in _WITH_VALUE):
        if args[i] == "-u":  # unbuffered: what the sandbox's harness relies on for its pipes
            for stream in (sys.stdout, sys.stderr):
                if isinstance(stream, io.TextIOWrapper):
                    stream.reconfigure(line_buffering=True, write_through=True)
        elif args[i] == "-B":
            sys.dont_write_bytecode = True
        i += 2 if args[i] in _WITH_VALUE else 1
    rest = args[i:]
    if not rest:
        print("rl-swarm-desktop: an interpreter needs -c CODE or a FILE", file=sys.stderr)
        return 2
    if rest[0] == "-c":
        if len(rest) < 2:
            print("rl-swarm-desktop: -c needs an argument", file=sys.stderr)
            return 2
        sys.argv = ["-c", *rest[2:]]
        namespace = {"__name__": "__main__", "__builtins__": builtins, "__doc__": None}
        exec(compile(rest[1], "<string>", "exec"), namespace)
        return 0
    sys.argv = list(rest)
    runpy.run_path(rest[0], run_name="__main__")
    return 0
