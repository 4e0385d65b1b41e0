"""PyTorch reference for `latentlab bench --pytorch PYTHON`: the same training steps as latentlab's
bench models (same layers, losses, optimiser, batch), on the same MNIST images, same thread count.

Standalone: python pytorch_ref.py --mnist DIR [--models mlp-vae,vae,dcgan,dcgan-64] [--threads N] [--steps N]
            [--warmup N] prints one JSON line per model.
Server (what bench uses): python pytorch_ref.py --serve --mnist DIR --threads N prints {"ready": true},
then answers each request line {"model", "batch", "steps", "warmup"} with one result line
{"model", "batch", "samples_per_sec", "median_step_ms", "threads", "torch"}; {"quit": true} ends it.
"""
import argparse, gzip, json, os, statistics, struct, sys, time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def load_mnist(d, n):
    with gzip.open(os.path.join(d, "train-images-idx3-ubyte.gz"), "rb") as f:
        magic, count, h, w = struct.unpack(">IIII", f.read(16))
        assert magic == 2051, "not an idx3 image file"
        count = min(count, n)
        x = np.frombuffer(f.read(count * h * w), dtype=np.uint8).reshape(count, h * w)
    return torch.from_numpy(x.astype(np.float32) / 255.0)


class MlpVae(nn.Module):
    # d-h1-…-(l,l) / l-…-h1-d, ReLU, Bernoulli decoder (BCE with logits) + KL; log σ² clamped as latentlab does.
    def __init__(s, d=784, hidden=(400,), l=20):
        super().__init__()
        dims = (d,) + tuple(hidden)
        s.enc = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims, dims[1:]))
        s.mu, s.lv = nn.Linear(dims[-1], l), nn.Linear(dims[-1], l)
        dec = (l,) + tuple(reversed(hidden)) + (d,)
        s.dec = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dec, dec[1:]))

    def loss(s, x):
        h = x
        for layer in s.enc:
            h = F.relu(layer(h))
        mu, lv = s.mu(h), s.lv(h).clamp(-12, 8)
        z = mu + torch.exp(0.5 * lv) * torch.randn_like(mu)
        for i, layer in enumerate(s.dec):
            z = layer(z)
            if i + 1 < len(s.dec):
                z = F.relu(z)
        rec = F.binary_cross_entropy_with_logits(z, x, reduction="sum") / x.shape[0]
        kl = -0.5 * torch.sum(1 + lv - mu.pow(2) - lv.exp()) / x.shape[0]
        return rec + kl


class G(nn.Module):
    def __init__(s, l=100):
        super().__init__()
        s.fc, s.bn0 = nn.Linear(l, 128 * 7 * 7), nn.BatchNorm2d(128)
        s.up1, s.bn1 = nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.BatchNorm2d(64)
        s.up2 = nn.ConvTranspose2d(64, 1, 4, 2, 1)

    def forward(s, z):
        x = F.relu(s.bn0(s.fc(z).view(-1, 128, 7, 7)))
        return torch.tanh(s.up2(F.relu(s.bn1(s.up1(x)))))


class D(nn.Module):
    # conv3: train dcgan's 3×3 layer on the 7×7 features (False: the two-conv D of earlier releases).
    def __init__(s, conv3=True):
        super().__init__()
        s.c1, s.c2, s.bn2 = nn.Conv2d(1, 64, 4, 2, 1), nn.Conv2d(64, 128, 4, 2, 1), nn.BatchNorm2d(128)
        s.c3, s.bn3 = (nn.Conv2d(128, 128, 3, 1, 1), nn.BatchNorm2d(128)) if conv3 else (None, None)
        s.fc = nn.Linear(128 * 7 * 7, 1)

    def forward(s, x):
        x = F.leaky_relu(s.c1(x), 0.2)
        x = F.leaky_relu(s.bn2(s.c2(x)), 0.2)
        if s.c3 is not None:
            x = F.leaky_relu(s.bn3(s.c3(x)), 0.2)
        return s.fc(x.flatten(1))


class G64(nn.Module):
    """pytorch/examples' dcgan Generator (nz 100, ngf 64, 64×64 RGB), layer for layer."""

    def __init__(s, nz=100, ngf=64):
        super().__init__()
        s.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
            nn.ConvTranspose2d(ngf, 3, 4, 2, 1, bias=False), nn.Tanh())

    def forward(s, z):
        return s.main(z.view(z.shape[0], -1, 1, 1))


class D64(nn.Module):
    """pytorch/examples' dcgan Discriminator (ndf 64), returning logits (their Sigmoid + BCELoss is
    BCE-with-logits here, as in latentlab)."""

    def __init__(s, ndf=64):
        super().__init__()
        s.main = nn.Sequential(
            nn.Conv2d(3, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 8), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False))

    def forward(s, x):
        return s.main(x).view(-1, 1)


def time_steps(step, batches, warmup, steps):
    for i in range(warmup):
        step(batches[i % len(batches)])
    ts = []
    for i in range(steps):
        t0 = time.perf_counter()
        step(batches[(warmup + i) % len(batches)])
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def bench_vae(x, b, warmup, steps, hidden):
    m = MlpVae(hidden=hidden)
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    batches = [xb for xb in x.split(b) if len(xb) == b]

    def step(xb):
        opt.zero_grad(set_to_none=True)
        loss = m.loss(xb)
        loss.backward()
        opt.step()
        return loss.item()

    return time_steps(step, batches, warmup, steps)


def bench_dcgan(x, b, warmup, steps, faces=False):
    g, d = (G64(), D64()) if faces else (G(), D())
    og = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    od = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    if faces:
        # Step time does not depend on pixel values: 16 batches of uniform noise in [-1, 1].
        xs = torch.rand(16 * b, 3, 64, 64) * 2 - 1
    else:
        xs = (x * 2 - 1).view(-1, 1, 28, 28)
    batches = [xb for xb in xs.split(b) if len(xb) == b]
    bce = F.binary_cross_entropy_with_logits

    def step(xb):
        z = torch.randn(b, 100)
        fake = g(z)
        od.zero_grad(set_to_none=True)
        lr, lf = d(xb), d(fake.detach())
        dl = bce(lr, torch.ones_like(lr)) + bce(lf, torch.zeros_like(lf))
        dl.backward()
        od.step()
        og.zero_grad(set_to_none=True)
        lf = d(fake)
        gl = bce(lf, torch.ones_like(lf))
        gl.backward()
        og.step()
        return dl.item() + gl.item()

    return time_steps(step, batches, warmup, steps)


def measure(x, name, b, warmup, steps):
    if name == "mlp-vae":
        med = bench_vae(x, b, warmup, steps, (400,))
    elif name == "vae":
        med = bench_vae(x, b, warmup, steps, (512, 256))
    elif name == "dcgan":
        med = bench_dcgan(x, b, warmup, steps)
    elif name == "dcgan-64":
        med = bench_dcgan(x, b, warmup, steps, faces=True)
    else:
        raise SystemExit(f"unknown model {name!r}")
    return {"model": name, "batch": b, "samples_per_sec": b / med, "median_step_ms": med * 1e3,
            "threads": torch.get_num_threads(), "torch": torch.__version__}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mnist", required=True)
    p.add_argument("--serve", action="store_true")
    p.add_argument("--models", default="mlp-vae,vae,dcgan")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--vae-batch", type=int, default=128)
    p.add_argument("--dcgan-batch", type=int, default=64)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    x = load_mnist(a.mnist, 8192)
    if a.serve:
        print(json.dumps({"ready": True, "torch": torch.__version__}), flush=True)
        for line in sys.stdin:
            req = json.loads(line)
            if req.get("quit"):
                break
            print(json.dumps(measure(x, req["model"], req["batch"], req["warmup"], req["steps"])), flush=True)
        return
    for name in a.models.split(","):
        b = a.dcgan_batch if name.startswith("dcgan") else a.vae_batch
        print(json.dumps(measure(x, name, b, a.warmup, a.steps)), flush=True)


if __name__ == "__main__":
    main()
