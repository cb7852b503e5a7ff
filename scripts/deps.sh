#!/usr/bin/env bash
# Installs what hymeval needs to build and test on Debian/Ubuntu, skipping
# whatever is already there. Used by scripts/quickstart.sh and scripts/test.sh.
set -euo pipefail

debs=(build-essential pkg-config meson ninja-build libcjson-dev libpcre2-dev zlib1g-dev libcmocka-dev python3 python3-pip)
# the tests also run one evaluation over several MPI ranks (tests/test_dist.py)
# and load the HTML report in headless Chromium (tests/test_report_html.py);
# the quick start needs neither
if [ "${1:-}" = "--test" ]; then
  debs+=(openmpi-bin libopenmpi-dev chromium)
fi
missing=()
for p in "${debs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing Debian packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Test-only Python packages: the tokenizer is compared with Hugging Face's
# `tokenizers`, the engine with a NumPy reference.
if [ "${1:-}" = "--test" ]; then
  need=()
  python3 -c 'import numpy' 2>/dev/null || need+=(numpy)
  python3 -c 'import tokenizers' 2>/dev/null || need+=(tokenizers)
  if [ ${#need[@]} -gt 0 ]; then
    echo "== installing Python packages: ${need[*]}"
    python3 -m pip install -q "${need[@]}" 2>/dev/null ||
      python3 -m pip install -q --break-system-packages "${need[@]}"
  fi
fi
