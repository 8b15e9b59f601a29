"""A stand-in for wsl.exe on Linux: checks the command the app built (`-d DISTRO --exec EXE ARGS`)
and runs it the way WSL would, as a child whose stdin, stdout and stderr are this process's.
EXE is mapped to a program of this machine: RL_SWARM_WSL_EXE (a shell-split command), default
the checkout's CLI, which stands for the Linux bundle at /opt/rl-swarm-desktop."""

import os
import shlex
import subprocess
import sys


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[0] != "-d" or argv[2] != "--exec":
        print(f"wsl stand-in: expected -d DISTRO --exec EXE ARGS, got {argv}", file=sys.stderr)
        return 1
    distro, exe, args = argv[1], argv[3], argv[4:]
    if distro != "RLSwarm" or exe != "/opt/rl-swarm-desktop/rl-swarm-desktop":
        print(f"wsl stand-in: unexpected distro {distro!r} or executable {exe!r}", file=sys.stderr)
        return 1
    program = shlex.split(os.environ.get("RL_SWARM_WSL_EXE", f"{sys.executable} -m desktop.cli"))
    # as wsl.exe: a Windows-side kill of wsl.exe does not reach the Linux process; only stdin does
    return subprocess.call(program + args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
