"""The anvil binary for a container image, without Node.js in the image.

`npm ci` fetches anvil as the package @foundry-rs/anvil-linux-<arch>; this fetches the same
tarball from the npm registry, checks it against the integrity hash package-lock.json pins (so
the image holds the very anvil the tests ran), and writes its bin/anvil.

    python3 fetch_anvil.py package-lock.json /opt/rl-swarm/bin/anvil
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import platform
import sys
import tarfile
import urllib.request
from pathlib import Path

REGISTRY = "https://registry.npmjs.org"
ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
LIMIT = 256 << 20


def main(lock_file: str, out: str) -> int:
    arch = ARCH.get(platform.machine().lower())
    if arch is None:
        print(f"fetch_anvil: no anvil package for {platform.machine()}", file=sys.stderr)
        return 2
    name = f"@foundry-rs/anvil-linux-{arch}"
    entry = json.loads(Path(lock_file).read_text())["packages"][f"node_modules/{name}"]
    version, integrity = entry["version"], entry["integrity"]
    algorithm, _, expected = integrity.partition("-")
    url = entry.get("resolved") or f"{REGISTRY}/{name}/-/{name.split('/')[1]}-{version}.tgz"
    with urllib.request.urlopen(url, timeout=120) as reply:
        data = reply.read(LIMIT + 1)
    if len(data) > LIMIT:
        print(f"fetch_anvil: {url} is larger than {LIMIT >> 20} MB", file=sys.stderr)
        return 1
    if base64.b64encode(hashlib.new(algorithm, data).digest()).decode() != expected:
        print(f"fetch_anvil: {url} does not match package-lock.json's {algorithm} hash", file=sys.stderr)
        return 1
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        binary = tar.extractfile("package/bin/anvil")
        if binary is None:
            print(f"fetch_anvil: {url} holds no package/bin/anvil", file=sys.stderr)
            return 1
        target = Path(out)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(binary.read())
    target.chmod(0o755)
    print(f"anvil {version} ({name}, {algorithm} checked) -> {target}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
