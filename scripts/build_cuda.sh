#!/usr/bin/env bash
# Builds the CUDA variant here for sm_90 (H100/H200) and packs it into
# dist/hymeval-cuda/ with the cJSON shared library beside the binary (rpath
# $ORIGIN), so it runs on the GPU machine, which has no cJSON.
#   usage: scripts/build_cuda.sh [ARCH]      (default 90)
set -euo pipefail
cd "$(dirname "$0")/.."
arch="${1:-90}"
bash scripts/deps.sh
export PATH="/usr/local/cuda/bin:$PATH"
if [ ! -f build-cuda/build.ninja ]; then
  meson setup build-cuda -Dcuda=enabled -Dgpu_sm="$arch" --buildtype=release >/dev/null
fi
# meson passes nvcc no depfile options here, so ninja does not see the
# headers a .cu includes: when one is newer than the last build, every .cu
# is compiled again
if [ -f build-cuda/hymeval ] &&
   [ -n "$(find kernels engine tests -name '*.h' -o -name '*.cuh' -newer build-cuda/hymeval | head -1)" ]; then
  find kernels tests/gpu -name '*.cu' -exec touch {} +
fi
ninja -C build-cuda >/dev/null
out=dist/hymeval-cuda
rm -rf "$out" && mkdir -p "$out"
cp build-cuda/hymeval "$out/"
# every non-system library the binary needs travels beside it
for lib in $(ldd build-cuda/hymeval | awk '/libcjson/ {print $3}'); do
  cp -L "$lib" "$out/"
done
# the GPU tests (kernels, whole backend) and the ceilings program travel too (rpath $ORIGIN as well)
for exe in build-cuda/tests/test_kernels build-cuda/tests/test_backend build-cuda/tests/ceilings; do
  if [ -f "$exe" ]; then cp "$exe" "$out/"; fi
done
echo "== packed $out:"
ls -la "$out"
