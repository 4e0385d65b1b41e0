"""Interop check run by tests/interop.rs: latentlab's outputs load in the real Python tools.

usage: interop.py SAMPLES.npy N C H W MODEL.safetensors EXPECTED_NAMES.json KIND Z.npy DECODED.npy
"""
import json
import sys

import numpy as np
from safetensors.numpy import load_file

samples, n, c, h, w, st, names, kind, z_path, dec_path = sys.argv[1:]
x = np.load(samples)
assert x.dtype == np.float32, x.dtype
assert x.shape == (int(n), int(c), int(h), int(w)), x.shape
assert 0.0 <= x.min() and x.max() <= 1.0, (x.min(), x.max())

t = load_file(st)
want = json.load(open(names))
got = {k: list(v.shape) for k, v in t.items()}
assert got == {k: v for k, v in want}, (sorted(got), sorted(k for k, _ in want))
assert all(v.dtype == np.float32 for v in t.values())

# The decoder forward pass written from the documented layout: y = x @ weight + bias.
z = np.load(z_path).astype(np.float64)
hdn = z
if kind == "vae":
    k = len([n for n in t if n.startswith("decoder.layers.") and n.endswith(".weight")])
    for i in range(k):
        hdn = hdn @ t[f"decoder.layers.{i}.weight"] + t[f"decoder.layers.{i}.bias"]
        hdn = np.maximum(hdn, 0.0) if i < k - 1 else 1.0 / (1.0 + np.exp(-hdn))
elif kind == "gan":
    k = len([n for n in t if n.startswith("g.net.layers.") and n.endswith(".weight")])
    for i in range(k):
        hdn = hdn @ t[f"g.net.layers.{i}.weight"] + t[f"g.net.layers.{i}.bias"]
        hdn = np.where(hdn > 0, hdn, 0.2 * hdn) if i < k - 1 else (np.tanh(hdn) + 1.0) / 2.0
else:
    raise SystemExit(f"unknown kind {kind}")
expected = np.load(dec_path)
err = np.abs(hdn.reshape(expected.shape) - expected).max()
assert err < 1e-4, f"numpy forward differs from latentlab by {err}"
print(f"ok {kind}: {len(t)} tensors, samples {x.shape}, max |numpy - latentlab| = {err:.2e}")
