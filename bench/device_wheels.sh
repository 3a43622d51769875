#!/usr/bin/env bash
# Packs into .whl/ what bench/device.sh needs and the GPU machine's image lacks (that machine
# reaches no package index): pure wheels for evosax, defusedxml and Ray's schema packages, and
# Ray itself as a tar.xz of its installed tree without its Java jar, dashboard build and RLlib
# (its wheel is 79 MB; the device tool carries 64 MiB in all). Run here, where pip reaches an index.
#
#   bash bench/device_wheels.sh   # then: device run, carry [".whl", "shared"], bash bench/device.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RAY=2.60.0
PY=3.12  # the GPU image's python3
rm -rf .whl && mkdir .whl
BIN=(--no-deps --only-binary=:all: --python-version "$PY" --implementation cp --platform manylinux_2_28_x86_64
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
python3 -m pip download -q "${BIN[@]}" -d .whl evosax==0.3.2 dotmap==1.3.30 defusedxml==0.7.1 jsonschema==4.26.0 \
  referencing==0.37.0 jsonschema-specifications==2025.9.1 rpds-py==2026.9.1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download -q "${BIN[@]}" -d "$tmp" "ray==$RAY"
(cd "$tmp" && unzip -q ray-*.whl && rm ray-*.whl && rm -rf ray/jars ray/dashboard/client/build ray/rllib)
tar -C "$tmp" -cf - . | xz -T0 -6 >.whl/ray-site.tar.xz
du -sh .whl
