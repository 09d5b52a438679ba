#!/usr/bin/env bash
# Set up shapepose on a fresh Debian machine: the system libraries OpenGL/EGL rendering and
# MeshLab need at import, then the pinned Python dependencies and the package itself.
set -euo pipefail
cd "$(dirname "$0")"

need_libs=()
for lib in libEGL.so.1 libGL.so.1 libEGL_mesa.so.0; do
  ldconfig -p | grep -q "$lib" || need_libs+=("$lib")
done
if [ ${#need_libs[@]} -gt 0 ]; then
  echo "install.sh: missing ${need_libs[*]}; installing Debian's libegl1 libegl-mesa0 libgl1 libgl1-mesa-dri"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libegl1 libegl-mesa0 libgl1 libgl1-mesa-dri >/dev/null
fi

python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore -r requirements.txt
python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore --no-deps -e .
echo "install.sh: done ($(python3 -m snakemake --version 2>/dev/null | head -n1) snakemake)"
