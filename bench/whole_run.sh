#!/usr/bin/env bash
# Whole runs, latentlab against PyTorch's own training script (bench/pytorch_train.py: the same
# networks, data and recipe), one after the other on this machine: wall time, samples/s and the
# final quality of each. What a user waits for, not a step in isolation (that is `latentlab bench`).
#
#   bash bench/whole_run.sh PYTHON [OUT]        # PYTHON: an interpreter with torch
#
# Env: LATENTLAB (the binary; default target/release/latentlab), LATENTLAB_DATA (holds mnist/),
# VAE_EPOCHS (20), DCGAN_EPOCHS (1), THREADS (one per core: RAYON_NUM_THREADS here, torch's threads there).
#   VAE:   `train vae --epochs E --lr-schedule constant --kl-warmup 0` vs `pytorch_train.py vae`
#          (Adam 1e-3, batch 128, dynamic binarisation, a test pass per epoch on both sides);
#          quality: test −ELBO in nats (both on the test set binarised once with a fixed seed).
#   DCGAN: `train dcgan --epochs E` vs `pytorch_train.py dcgan --lr 8e-4` (the same networks,
#          D with its 3×3 layer, Adam 8e-4 β1 0.5, batch 64); quality: FID of 10,000 samples by
#          `latentlab eval` (the run's own samples, and PyTorch's .npy through --samples).
# latentlab writes checkpoints, pictures and a summary as every run does; PyTorch writes its samples.
# Peak memory (maximum resident set of each training process) comes from GNU time (/usr/bin/time)
# where it is installed, and shows as "-" where it is not.
set -euo pipefail
PY=${1:?usage: bash bench/whole_run.sh PYTHON [OUT]}
OUT=${2:-whole-run}
BIN=${LATENTLAB:-target/release/latentlab}
DATA=${LATENTLAB_DATA:-data}
VAE_EPOCHS=${VAE_EPOCHS:-20}
DCGAN_EPOCHS=${DCGAN_EPOCHS:-1}
THREADS=${THREADS:-$(nproc)}
HERE=$(cd "$(dirname "$0")" && pwd)
[ -x "$BIN" ] || { echo "whole_run.sh: no latentlab binary at $BIN (cargo build --release, or set LATENTLAB)" >&2; exit 2; }
[ -d "$DATA/mnist" ] || { echo "whole_run.sh: no $DATA/mnist (set LATENTLAB_DATA)" >&2; exit 2; }
"$PY" -c 'import torch' 2>/dev/null || { echo "whole_run.sh: $PY cannot import torch" >&2; exit 2; }
mkdir -p "$OUT"
rm -rf "$OUT/ll-vae" "$OUT/ll-dcgan"

# wall seconds of a command (its output kept in $OUT/NAME.log, its peak resident KiB in $OUT/NAME.rss)
timed() {
  local name=$1; shift
  local t0 t1 gnu=()
  [ -x /usr/bin/time ] && gnu=(/usr/bin/time -o "$OUT/$name.rss" -f %M)
  rm -f "$OUT/$name.rss"
  t0=$(date +%s.%N)
  "${gnu[@]}" "$@" >"$OUT/$name.log" 2>&1 || { echo "whole_run.sh: $name failed; see $OUT/$name.log" >&2; tail -5 "$OUT/$name.log" >&2; exit 1; }
  t1=$(date +%s.%N)
  python3 -c "print(f'{$t1 - $t0:.1f}')"
}
export RAYON_NUM_THREADS=$THREADS

cpuinfo() { grep -m1 "^$1[[:space:]]*:" /proc/cpuinfo | cut -d: -f2 | xargs; }
echo "machine: $(cpuinfo 'model name') ($(cpuinfo vendor_id), family $(cpuinfo 'cpu family'), model $(cpuinfo model)), $(nproc) cores, $(grep -o -m1 -w 'avx512f' /proc/cpuinfo || echo 'no AVX-512'), threads $THREADS" >&2
echo "VAE, $VAE_EPOCHS epochs ..." >&2
ll_vae=$(timed ll-vae "$BIN" train vae --epochs "$VAE_EPOCHS" --lr-schedule constant --kl-warmup 0 --out "$OUT/ll-vae")
pt_vae=$(timed pt-vae "$PY" "$HERE/pytorch_train.py" vae --mnist "$DATA/mnist" --epochs "$VAE_EPOCHS" --threads "$THREADS" --out "$OUT/pt-vae")
echo "DCGAN, $DCGAN_EPOCHS epoch(s) ..." >&2
ll_gan=$(timed ll-dcgan "$BIN" train dcgan --epochs "$DCGAN_EPOCHS" --out "$OUT/ll-dcgan")
pt_gan=$(timed pt-dcgan "$PY" "$HERE/pytorch_train.py" dcgan --mnist "$DATA/mnist" --epochs "$DCGAN_EPOCHS" --lr 8e-4 --threads "$THREADS" --out "$OUT/pt-dcgan")
echo "FID of both DCGANs ..." >&2
"$BIN" eval "$OUT/ll-dcgan" --metrics fid --out "$OUT/ll-dcgan-eval.json" >"$OUT/ll-dcgan-eval.log" 2>&1
"$BIN" eval --samples "$OUT/pt-dcgan-samples.npy" --dataset mnist --metrics fid --out "$OUT/pt-dcgan-eval.json" >"$OUT/pt-dcgan-eval.log" 2>&1

python3 - "$OUT" "$ll_vae" "$pt_vae" "$ll_gan" "$pt_gan" "$VAE_EPOCHS" "$DCGAN_EPOCHS" <<'EOF'
import json, sys
out, ll_vae, pt_vae, ll_gan, pt_gan = sys.argv[1], *map(float, sys.argv[2:6])
ve, ge = int(sys.argv[6]), int(sys.argv[7])
lv = json.load(open(f"{out}/ll-vae/summary.json")); pv = json.load(open(f"{out}/pt-vae.json"))
lg = json.load(open(f"{out}/ll-dcgan/summary.json"))
def fid(path):
    def find(v):
        if isinstance(v, dict):
            if isinstance(v.get("fid"), (int, float)): return v["fid"]
            for x in v.values():
                f = find(x)
                if f is not None: return f
        return None
    f = find(json.load(open(path)))
    return float("nan") if f is None else f
def rss_mb(name):
    try:
        return int(open(f"{out}/{name}.rss").read().split()[-1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
def mb(v):
    return "-" if v is None else f"{v:,.0f}"
n_vae, n_gan = 60000 * ve, (60000 // 64) * 64 * ge
rows = [
    ("vae", ve, ll_vae, pt_vae, n_vae / ll_vae, n_vae / pt_vae, rss_mb("ll-vae"), rss_mb("pt-vae"),
     f"test -ELBO {lv['test']['loss']:.2f} vs {pv['test_neg_elbo']:.2f}"),
    ("dcgan", ge, ll_gan, pt_gan, n_gan / ll_gan, n_gan / pt_gan, rss_mb("ll-dcgan"), rss_mb("pt-dcgan"),
     f"FID {fid(f'{out}/ll-dcgan-eval.json'):.1f} vs {fid(f'{out}/pt-dcgan-eval.json'):.1f}"),
]
print("| model | epochs | latentlab wall s | PyTorch wall s | wall ratio (ours ÷ theirs) | samples/s (ours / theirs, wall) | peak MB (ours / theirs) | quality (ours vs theirs) |")
print("|---|---|---|---|---|---|---|---|")
for m, e, a, b, sa, sb, ra, rb, q in rows:
    print(f"| {m} | {e} | {a:.1f} | {b:.1f} | **{a / b:.2f}×** | {sa:,.0f} / {sb:,.0f} | {mb(ra)} / {mb(rb)} | {q} |")
keys = ["model", "epochs", "latentlab_wall_s", "pytorch_wall_s", "ratio", "latentlab_sps", "pytorch_sps",
        "latentlab_peak_mb", "pytorch_peak_mb", "quality"]
json.dump({"rows": [dict(zip(keys, [m, e, a, b, a / b, sa, sb, ra, rb, q])) for m, e, a, b, sa, sb, ra, rb, q in rows]},
          open(f"{out}/whole-run.json", "w"), indent=1)
EOF
