"""PyTorch reference training for latentlab's README tables: the same networks and recipes as
`latentlab train vae` and `latentlab train dcgan`, on the same MNIST files, so that quality per
epoch and per minute can be compared with the same instrument (`latentlab eval --samples`).

  python pytorch_train.py vae   --mnist DIR --epochs 20 --seed 0 --out vae-s0     # prints test -ELBO
  python pytorch_train.py dcgan --mnist DIR --epochs 3  --seed 0 --out dcgan-s0   # writes samples

Each run writes OUT.json (recipe, seconds, test losses) and OUT-samples.npy (10,000 samples in
[0,1], N×1×28×28 float32) for `latentlab eval --samples OUT-samples.npy --dataset mnist`.
"""
import argparse, gzip, json, os, struct, time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# The DCGAN networks are the ones `bench --pytorch` times (same folder), so the two references cannot drift apart.
from pytorch_ref import D, G


def idx_images(path):
    with gzip.open(path, "rb") as f:
        magic, n, h, w = struct.unpack(">IIII", f.read(16))
        assert magic == 2051, f"{path}: not an idx3 image file"
        return torch.from_numpy(np.frombuffer(f.read(n * h * w), dtype=np.uint8).reshape(n, h * w).astype(np.float32) / 255.0)


class Vae(nn.Module):
    """784-512-256-(20,20) / 20-256-512-784, ReLU, Bernoulli decoder, log σ² clamped to [-12, 8]."""

    def __init__(s, d=784, hidden=(512, 256), latent=20):
        super().__init__()
        dims = (d,) + hidden
        s.enc = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims, dims[1:]))
        s.mu, s.lv = nn.Linear(dims[-1], latent), nn.Linear(dims[-1], latent)
        dec = (latent,) + hidden[::-1] + (d,)
        s.dec = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dec, dec[1:]))

    def decode(s, z):
        for i, layer in enumerate(s.dec):
            z = layer(z)
            if i + 1 < len(s.dec):
                z = F.relu(z)
        return z

    def neg_elbo(s, x):
        h = x
        for layer in s.enc:
            h = F.relu(layer(h))
        mu, lv = s.mu(h), s.lv(h).clamp(-12, 8)
        z = mu + torch.exp(0.5 * lv) * torch.randn_like(mu)
        rec = F.binary_cross_entropy_with_logits(s.decode(z), x, reduction="none").sum(1)
        kl = 0.5 * (lv.exp() + mu.pow(2) - 1 - lv).sum(1)
        return rec, kl


def dcgan_init(m):
    # N(0, 0.02) weights, zero biases (latentlab's dcgan.rs); batch norm keeps γ = 1, β = 0.
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        nn.init.zeros_(m.bias)


def train_vae(a, train, test):
    m = Vae()
    opt = torch.optim.Adam(m.parameters(), lr=a.lr or 1e-3)
    g = torch.Generator().manual_seed(a.seed + 1)
    test_bin = torch.bernoulli(test, generator=torch.Generator().manual_seed(0x7E57))
    t0 = time.time()
    for epoch in range(a.epochs):
        perm = torch.randperm(len(train), generator=g)
        for i in range(0, len(train), a.batch):
            xb = torch.bernoulli(train[perm[i:i + a.batch]], generator=g)  # dynamic binarisation
            rec, kl = m.neg_elbo(xb)
            loss = (rec + kl).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        with torch.no_grad():
            rec, kl = zip(*(m.neg_elbo(test_bin[i:i + 1000]) for i in range(0, len(test_bin), 1000)))
            rec, kl = torch.cat(rec).mean().item(), torch.cat(kl).mean().item()
        print(json.dumps({"epoch": epoch + 1, "test_neg_elbo": rec + kl, "recon": rec, "kl": kl, "seconds": time.time() - t0}), flush=True)
    with torch.no_grad():
        samples = torch.sigmoid(m.decode(torch.randn(10000, 20, generator=g)))
    return {"test_neg_elbo": rec + kl, "recon": rec, "kl": kl}, samples


def train_dcgan(a, train):
    gen, disc = G(), D(conv3=not a.two_conv_d)
    gen.apply(dcgan_init)
    disc.apply(dcgan_init)
    lr = a.lr or 2e-4
    og = torch.optim.Adam(gen.parameters(), lr=lr, betas=(0.5, 0.999))
    od = torch.optim.Adam(disc.parameters(), lr=lr, betas=(0.5, 0.999))
    xs = (train * 2 - 1).view(-1, 1, 28, 28)
    g = torch.Generator().manual_seed(a.seed + 1)
    bce = F.binary_cross_entropy_with_logits
    t0 = time.time()
    for epoch in range(a.epochs):
        perm = torch.randperm(len(xs), generator=g)
        for i in range(0, len(xs) - a.batch + 1, a.batch):
            xb = xs[perm[i:i + a.batch]]
            fake = gen(torch.randn(a.batch, 100, generator=g))
            lr_, lf = disc(xb), disc(fake.detach())
            dl = bce(lr_, torch.ones_like(lr_)) + bce(lf, torch.zeros_like(lf))
            od.zero_grad(set_to_none=True)
            dl.backward()
            od.step()
            lf = disc(fake)
            gl = bce(lf, torch.ones_like(lf))
            og.zero_grad(set_to_none=True)
            gl.backward()
            og.step()
        print(json.dumps({"epoch": epoch + 1, "d_loss": dl.item(), "g_loss": gl.item(), "seconds": time.time() - t0}), flush=True)
    gen.eval()
    with torch.no_grad():
        samples = torch.cat([(gen(torch.randn(1000, 100, generator=g)) + 1) / 2 for _ in range(10)])
    return {}, samples.clamp(0, 1)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model", choices=["vae", "dcgan"])
    p.add_argument("--mnist", required=True)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--two-conv-d", action="store_true", help="DCGAN: D without the 3×3 layer (the README's references)")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--out", required=True)
    a = p.parse_args()
    a.batch = a.batch or (128 if a.model == "vae" else 64)
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    train = idx_images(os.path.join(a.mnist, "train-images-idx3-ubyte.gz"))
    test = idx_images(os.path.join(a.mnist, "t10k-images-idx3-ubyte.gz"))
    t0 = time.time()
    if a.model == "vae":
        result, samples = train_vae(a, train, test)
    else:
        result, samples = train_dcgan(a, train)
    result.update({"model": a.model, "epochs": a.epochs, "batch": a.batch, "seed": a.seed, "seconds": time.time() - t0,
                   "threads": torch.get_num_threads(), "torch": torch.__version__})
    np.save(a.out + "-samples.npy", samples.reshape(-1, 1, 28, 28).numpy().astype(np.float32))
    with open(a.out + ".json", "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
