# shellcheck shell=bash
# Sourced by make docker-test and make docker-gpu: what this machine hands a build (build/docker-extra/).
#
#   . installer/docker/build_extra.sh cpu|gpu
#
# Where this machine's pip trusts a CA of its own (a TLS-inspecting proxy), so does the build's pip
# (ca.pem). For the CPU image, torch comes from this machine's CPU wheel when pip finds one in a
# local folder that a build inside a container cannot see (RL_SWARM_TORCH_WHEEL names it for
# docker-compose.yaml); elsewhere the Dockerfile asks PyTorch's CPU index. The GPU image takes
# PyPI's torch, which brings CUDA.
rm -rf build/docker-extra && mkdir -p build/docker-extra
cert="${PIP_CERT:-$(python3 -c 'import configparser, os; p = configparser.ConfigParser(); p.read(["/etc/pip.conf", os.path.expanduser("~/.config/pip/pip.conf")]); print(next((p.get(s, "cert") for s in p.sections() if p.has_option(s, "cert")), ""))')}"
if [ -n "$cert" ] && [ -f "$cert" ]; then
  cp "$cert" build/docker-extra/ca.pem
  echo "docker: the build trusts this machine's CA bundle ($cert), as its pip does"
fi
if [ "${1:-cpu}" = cpu ]; then
  wheel="$(python3 - <<'EOF'
import configparser, glob, os
# pip's own configuration files, in pip's order: the find-links folders they name
files = [os.environ.get("PIP_CONFIG_FILE", ""), "/etc/pip.conf", "/etc/xdg/pip/pip.conf",
         os.path.expanduser("~/.pip/pip.conf"), os.path.expanduser("~/.config/pip/pip.conf")]
parser = configparser.ConfigParser()
parser.read([f for f in files if f and os.path.isfile(f)])
folders = [os.environ.get("PIP_FIND_LINKS", "")] + [parser.get(s, "find-links", fallback="") for s in parser.sections()]
for folder in " ".join(folders).split():
    found = sorted(glob.glob(os.path.join(folder.removeprefix("file://"), "torch-2.13.0+cpu-cp311-*.whl")))
    if found:
        print(found[-1])
        break
EOF
)"
  if [ -n "$wheel" ]; then
    cp "$wheel" build/docker-extra/
    RL_SWARM_TORCH_WHEEL="$(basename "$wheel")"
    export RL_SWARM_TORCH_WHEEL
    echo "docker: torch from this machine's wheel $(basename "$wheel")"
  fi
fi
