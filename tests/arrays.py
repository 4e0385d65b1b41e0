"""Sample arrays written by the real numpy in every form `eval --samples` accepts (tests/arrays.rs).

usage: arrays.py DIR            writes the forms below into DIR
       arrays.py DIR DIGITS.u8 N   also writes DIR/digits_nhwc.npz: the N×1×8×8 bytes of DIGITS.u8
                                   as N×8×8×1 uint8 `images`, beside a second array `labels`

Each case FILE comes with FILE.ref.f32: the values it must load as, as raw little-endian float32
N×C×H×W with no header, so the expected values do not go through the reader under test.
"""
import os
import sys

import numpy as np

d = sys.argv[1]
rng = np.random.default_rng(7)
# Asymmetric sizes so that any swapped axis changes the shape or the values.
N, C, H, W = 2, 3, 4, 5
x = rng.random((N, C, H, W))  # float64, NCHW
g = rng.random((N, H, W))  # one channel, NHW
u = rng.integers(0, 256, (N, C, H, W), dtype=np.uint8)


def nhwc(a):
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1))


def case(name, ref, save):
    path = os.path.join(d, name)
    save(path)
    np.ascontiguousarray(ref, dtype="<f4").tofile(path + ".ref.f32")


x32 = x.astype("<f4")
x16 = x.astype("<f2")
u_ref = u.astype(np.float64) / 255.0
case("f32_nchw.npy", x32, lambda p: np.save(p, x32))
case("f64_nchw.npy", x32, lambda p: np.save(p, x))
case("f16_nchw.npy", x16.astype(np.float32), lambda p: np.save(p, x16))
case("f32_nhwc.npy", x32, lambda p: np.save(p, nhwc(x32)))
case("f64_nhwc.npy", x32, lambda p: np.save(p, nhwc(x)))
case("u8_nchw.npy", u_ref, lambda p: np.save(p, u))
case("u8_nhwc.npy", u_ref, lambda p: np.save(p, nhwc(u)))
case("f32_nhw.npy", g.astype("<f4")[:, None], lambda p: np.save(p, g.astype(np.float32)))
case("u8_nhw.npy", (u[:, 0] / 255.0)[:, None], lambda p: np.save(p, u[:, 0]))
case("be_f4_nchw.npy", x32, lambda p: np.save(p, x.astype(">f4")))
case("be_f8_nhwc.npy", x32, lambda p: np.save(p, nhwc(x).astype(">f8")))
case("be_f2_nchw.npy", x16.astype(np.float32), lambda p: np.save(p, x16.astype(">f2")))
case("fortran_f32_nchw.npy", x32, lambda p: np.save(p, np.asfortranarray(x32)))
case("fortran_u8_nhwc.npy", u_ref, lambda p: np.save(p, np.asfortranarray(nhwc(u))))
case("fortran_f64_nhw.npy", g.astype("<f4")[:, None], lambda p: np.save(p, np.asfortranarray(g)))
case("one_key.npz", x32, lambda p: np.savez(p, samples=x32))
case("compressed_u8_nhwc.npz", u_ref, lambda p: np.savez_compressed(p, images=nhwc(u)))
# Several arrays: the test picks `images` with --key and expects the others to be listed.
case("several_keys.npz", u_ref, lambda p: np.savez(p, labels=np.arange(N), images=nhwc(u), z=x))
assert np.load(os.path.join(d, "fortran_f32_nchw.npy")).flags.f_contiguous

# Hostile values, at known places (tests/arrays.rs names them).
bad = nhwc(x32).copy()
bad[1, 2, 3, 0] = np.nan  # NHWC index: image 1, row 2, column 3, channel 0; flat index 99
np.save(os.path.join(d, "nan_nhwc.npy"), bad)
big = x.copy()
big[0, 1, 2, 3] = 1.5  # flat index 33
np.save(os.path.join(d, "range_nchw.npy"), big)
np.save(os.path.join(d, "wrong_shape.npy"), np.zeros((N, W, H, C), np.float32))

if len(sys.argv) > 2:
    n = int(sys.argv[3])
    digits = np.fromfile(sys.argv[2], dtype=np.uint8).reshape(n, 1, 8, 8)
    np.savez(os.path.join(d, "digits_nhwc.npz"), images=nhwc(digits), labels=np.zeros(n, np.int64))
print("ok arrays")
