#!/usr/bin/env bash
# The GPU measurement (issue 28), prepared for a session that is lent a GPU: copy a binary built
# beforehand (`bash scripts/build-cuda.sh`, or `cargo build --release --features wgpu`) and the
# datasets to the machine (it has no network), then run
#   bash scripts/gpu-measure.sh target/release/latentlab cuda OUT
# It writes OUT/: the device, `bench` on the device and on the host's CPU, the default MNIST DCGAN and
# the 64×64 face DCGAN trained on the device (wall time, samples/s, peak process memory), peak GPU
# memory (sampled by nvidia-smi), and each run's eval. GPU_MEASURE_QUICK=1 cuts every run to a few
# steps (to check the script itself on any device, lavapipe included).
set -euo pipefail
BIN=$(realpath "${1:?usage: gpu-measure.sh BINARY cuda|wgpu [OUT]}")
DEV=${2:?usage: gpu-measure.sh BINARY cuda|wgpu [OUT]}
OUT=${3:-gpu-measure}
mkdir -p "$OUT"
OUT=$(realpath "$OUT")
export LATENTLAB_CACHE="${LATENTLAB_CACHE:-$OUT/cache}"
QUICK=()
EVAL=()
BENCH=(--steps 30 --warmup 10 --rounds 3)
CPU_BENCH=(--model dcgan,dcgan-64)
if [ "${GPU_MEASURE_QUICK:-0}" = 1 ]; then
  # Every step of the script, each as small as it gets (lavapipe takes minutes per 64×64 model).
  QUICK=(--max-steps 4)
  EVAL=(--n 200)
  BENCH=(--model mlp-vae --steps 2 --warmup 1 --rounds 1)
  CPU_BENCH=()
fi

{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || echo "no nvidia-smi"; lscpu | grep -E 'Model name|^CPU\(s\)'; } > "$OUT/machine.txt" 2>&1
cat "$OUT/machine.txt"

# Peak GPU memory: nvidia-smi sampled every 0.2 s into one file per phase.
sample_mem() {
  if command -v nvidia-smi >/dev/null; then
    while :; do nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits; sleep 0.2; done > "$OUT/$1.gpu-mem" 2>/dev/null &
    MEM=$!
  else
    MEM=""
  fi
}
stop_mem() {
  if [ -n "$MEM" ]; then kill "$MEM" 2>/dev/null || true; wait "$MEM" 2>/dev/null || true; fi
  if [ -s "$OUT/$1.gpu-mem" ]; then echo "$1: peak GPU memory $(sort -n "$OUT/$1.gpu-mem" | tail -1) MiB"; fi
}
# Wall time and peak host memory of one command, into OUT/NAME.time.
timed() {
  local name=$1; shift
  sample_mem "$name"
  local t0; t0=$(date +%s.%N)
  "$@" > "$OUT/$name.log" 2>&1 || { stop_mem "$name"; echo "$name FAILED:"; tail -20 "$OUT/$name.log"; return 1; }
  local t1; t1=$(date +%s.%N)
  stop_mem "$name"
  echo "$name: $(awk "BEGIN { print $t1 - $t0 }") s wall" | tee "$OUT/$name.time"
  tail -2 "$OUT/$name.log"
}

timed bench-device "$BIN" bench --device "$DEV" "${BENCH[@]}"
cat "$OUT/bench-device.log"
timed bench-cpu "$BIN" bench --device cpu "${CPU_BENCH[@]}" "${BENCH[@]}"
cat "$OUT/bench-cpu.log"
timed dcgan-mnist "$BIN" train dcgan --device "$DEV" --out "$OUT/dcgan-mnist" "${QUICK[@]}"
timed dcgan-faces "$BIN" train dcgan --dataset celeba --image-size 64 --device "$DEV" --out "$OUT/dcgan-faces" "${QUICK[@]}"
timed eval-mnist "$BIN" eval "$OUT/dcgan-mnist" --device "$DEV" --metrics fid,prd "${EVAL[@]}"
timed eval-faces "$BIN" eval "$OUT/dcgan-faces" --device "$DEV" --metrics fid,prd "${EVAL[@]}"
for r in dcgan-mnist dcgan-faces; do grep -h '"wall_secs"\|"train_samples_per_sec"' "$OUT/$r/summary.json"; done
