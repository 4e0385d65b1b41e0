"""PyTorch reference for `latentlab bench --pytorch PYTHON`: the same training steps as latentlab's
bench models (same layers, losses, optimiser, batch), on the same MNIST images, same thread count.
Prints one JSON line per model: {"model", "batch", "samples_per_sec", "median_step_ms", "threads"}.
Usage: python pytorch_ref.py --mnist DIR [--models mlp-vae,dcgan] [--threads N] [--steps N] [--warmup N]
"""
import argparse, gzip, json, os, statistics, struct, time

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
    # 784-400-(20,20) / 20-400-784, ReLU, Bernoulli decoder (BCE with logits) + KL.
    def __init__(s, d=784, h=400, l=20):
        super().__init__()
        s.enc, s.mu, s.lv = nn.Linear(d, h), nn.Linear(h, l), nn.Linear(h, l)
        s.dec1, s.dec2 = nn.Linear(l, h), nn.Linear(h, d)

    def loss(s, x):
        h = F.relu(s.enc(x))
        mu, lv = s.mu(h), s.lv(h).clamp(-12, 8)
        z = mu + torch.exp(0.5 * lv) * torch.randn_like(mu)
        logits = s.dec2(F.relu(s.dec1(z)))
        rec = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / x.shape[0]
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
    def __init__(s):
        super().__init__()
        s.c1, s.c2, s.bn2 = nn.Conv2d(1, 64, 4, 2, 1), nn.Conv2d(64, 128, 4, 2, 1), nn.BatchNorm2d(128)
        s.fc = nn.Linear(128 * 7 * 7, 1)

    def forward(s, x):
        x = F.leaky_relu(s.c1(x), 0.2)
        x = F.leaky_relu(s.bn2(s.c2(x)), 0.2)
        return s.fc(x.flatten(1))


def time_steps(step, batches, warmup, steps):
    for i in range(warmup):
        step(batches[i % len(batches)])
    ts = []
    for i in range(steps):
        t0 = time.perf_counter()
        step(batches[(warmup + i) % len(batches)])
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def bench_vae(x, b, warmup, steps):
    m = MlpVae()
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    batches = list(x.split(b))[:-1] if len(x) % b else list(x.split(b))

    def step(xb):
        opt.zero_grad(set_to_none=True)
        loss = m.loss(xb)
        loss.backward()
        opt.step()
        return loss.item()

    return time_steps(step, batches, warmup, steps)


def bench_dcgan(x, b, warmup, steps):
    g, d = G(), D()
    og = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    od = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
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


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mnist", required=True)
    p.add_argument("--models", default="mlp-vae,dcgan")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--vae-batch", type=int, default=128)
    p.add_argument("--dcgan-batch", type=int, default=64)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    x = load_mnist(a.mnist, 8192)
    for name in a.models.split(","):
        if name == "mlp-vae":
            b, med = a.vae_batch, bench_vae(x, a.vae_batch, a.warmup, a.steps)
        elif name == "dcgan":
            b, med = a.dcgan_batch, bench_dcgan(x, a.dcgan_batch, a.warmup, a.steps)
        else:
            continue
        print(json.dumps({"model": name, "batch": b, "samples_per_sec": b / med, "median_step_ms": med * 1e3,
                          "threads": torch.get_num_threads(), "torch": torch.__version__}), flush=True)


if __name__ == "__main__":
    main()
