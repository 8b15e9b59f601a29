"""Strip the symbol tables from the bundle's ELF libraries and programs (torch's libtorch_cpu.so
alone carries ~90 MB of them). Prints the size before and after.

    python installer/linux/strip_bundle.py build/dist/rl-swarm-desktop

Left alone: the bundle's own executable (PyInstaller appends its archive to it, and strip would cut
that off) and the wheels' vendored `*.libs/` folders (auditwheel rewrote those with patchelf, and
stripping such files has corrupted them before). `--strip-unneeded` keeps the dynamic symbols that
loading needs; `make package-test`'s self-test is what proves the stripped bundle still runs.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ELF_MAGIC = b"\x7fELF"


def size_of(root: Path) -> int:
    return sum(p.lstat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def candidates(root: Path) -> list[Path]:
    found = []
    for path in root.rglob("*"):
        if path.is_symlink() or not path.is_file() or path.parent == root:
            continue
        if any(part.endswith(".libs") for part in path.relative_to(root).parts):
            continue
        with path.open("rb") as f:
            if f.read(4) == ELF_MAGIC:
                found.append(path)
    return found


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not Path(argv[0]).is_dir():
        print("usage: strip_bundle.py BUNDLE_DIR", file=sys.stderr)
        return 2
    root = Path(argv[0])
    strip = shutil.which(os.environ.get("STRIP", "strip"))
    if strip is None:
        print("strip_bundle: no `strip` (binutils) here; the bundle stays unstripped", file=sys.stderr)
        return 0
    before = size_of(root)
    files = candidates(root)
    left = []  # one at a time: a file strip cannot read (p2pd has no section table) stays as it is
    for path in files:
        if subprocess.run([strip, "--strip-unneeded", str(path)], capture_output=True).returncode != 0:
            left.append(path.name)
    after = size_of(root)
    print(f"stripped {len(files) - len(left)} ELF files: {before / 1e6:,.0f} MB -> {after / 1e6:,.0f} MB "
          f"({(before - after) / 1e6:,.0f} MB less)" + (f"; left as they were: {', '.join(left)}" if left else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
