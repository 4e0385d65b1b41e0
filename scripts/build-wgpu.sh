#!/usr/bin/env bash
# Builds `--features wgpu` (pure Rust: nothing to download beyond crates.io) and says whether this
# machine has an adapter for it. `--software` first installs Mesa's software Vulkan driver
# (lavapipe, Debian/Ubuntu) so the GPU code path runs on a machine without a GPU, slowly.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--software" ]; then
  shift
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends mesa-vulkan-drivers libvulkan1
fi
cargo build --release --features wgpu "$@"
# Mesa's window-system code wants a runtime folder even with no display.
if [ -z "${XDG_RUNTIME_DIR:-}" ] || [ ! -d "$XDG_RUNTIME_DIR" ]; then export XDG_RUNTIME_DIR="$(mktemp -d)"; fi
LATENTLAB_DATA="${LATENTLAB_DATA:-data}" target/release/latentlab bench --device wgpu --model mlp-vae --steps 2 --warmup 1 ||
  echo "built, but --device wgpu cannot run here yet (see the error above)" >&2
