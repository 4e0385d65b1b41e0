#!/usr/bin/env bash
# Route: no source change; LLVM 23 from PyPI stands in for the bundle tracel-llvm-bundler downloads.
# Builds `--features cuda` with only package registries reachable: instead of letting
# tracel-llvm-bundler download its LLVM bundle, lay a PyPI LLVM 23 static SDK where the bundler
# looks for its install, with the marker that makes it skip the download.
set -euo pipefail
cd "$(dirname "$0")/.."

MLC_VER=23.1.1.post0                   # LLVM 23.1.1 (tracel-llvm is 23.1.0; llvm-sys 231 = LLVM 23.1)
TRACEL_DIR=tracel-llvm-23.1.0-4        # tracel-llvm-bundler 23.1.0-4 in Cargo.lock: keep in step
DATA="${LATENTLAB_LLVM_HOME:-$PWD/target/llvm-sdk}"   # stands in for $XDG_DATA_HOME
PREFIX="$DATA/tracel/$TRACEL_DIR"

case "$(uname -m)" in
  x86_64) PLAT=manylinux_2_28_x86_64 ;;
  aarch64) PLAT=manylinux_2_28_aarch64 ;;
  *) echo "no mlc-llvm-static wheel for $(uname -m)" >&2; exit 1 ;;
esac

if [ ! -e "$PREFIX/.tracel-llvm-installed" ]; then
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  # ~92 MB download (60 + 32), ~400 MB unpacked. The extra-targets wheel carries NVPTX.
  python3 -m pip download --no-deps --only-binary=:all: --platform "$PLAT" \
    --python-version 3.11 -d "$tmp" \
    "mlc-llvm-static==$MLC_VER" "mlc-llvm-static-extra-targets==$MLC_VER"
  rm -rf "$DATA/sdk" "$PREFIX"; mkdir -p "$DATA/sdk" "$DATA/tracel"
  for w in "$tmp"/*.whl; do python3 -m zipfile -e "$w" "$DATA/sdk"; done
  chmod +x "$DATA/sdk/mlc_llvm_static/static/bin/llvm-config"   # a python3 script
  ln -sfn "$DATA/sdk/mlc_llvm_static/static" "$PREFIX"
  "$PREFIX/bin/llvm-config" --link-static --version | grep -q '^23\.'
  "$PREFIX/bin/llvm-config" --link-static --targets-built | grep -qw NVPTX
  touch "$PREFIX/.tracel-llvm-installed"   # tracel-llvm-bundler's build.rs returns early on it
fi

# dirs::data_local_dir() == $XDG_DATA_HOME on Linux: the bundler and cubecl-llvm's build.rs
# both look for $XDG_DATA_HOME/tracel/tracel-llvm-23.1.0-4/{.tracel-llvm-installed,bin/llvm-config}.
XDG_DATA_HOME="$DATA" exec cargo build --release --features cuda "$@"
