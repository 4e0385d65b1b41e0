"""pytorch/examples' DCGAN on a CelebA folder, for the README's faces table: the same networks,
recipe (Adam 2e-4, beta1 0.5, batch 64, N(0, 0.02) init, BN gamma ~ N(1, 0.02)) and transform
(Resize(64) of the shorter side, CenterCrop(64), [-1, 1]) as their main.py, trained for a wall-clock
budget, then 10,000 samples written for `latentlab eval --samples`.

  python pytorch_faces.py --celeba DIR --minutes 30 --threads 2 --out torch-faces
  latentlab eval --samples torch-faces-samples.npy --dataset celeba

It holds out the same faces latentlab does (identity % 10 == 0) and trains on the rest. Writes
OUT.json (recipe, seconds, updates) and OUT-samples.npy (N×3×64×64 float32 in [0, 1]).
"""
import argparse, json, os, time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

from pytorch_ref import D64, G64


def load_faces(d, size):
    ids = {}
    path = os.path.join(d, "identity_CelebA.txt")
    if os.path.exists(path):
        for line in open(path):
            name, ident = line.split()
            ids[name] = int(ident)
    names = sorted(f for f in os.listdir(os.path.join(d, "img_align_celeba")) if f.endswith((".jpg", ".png")))
    train = [n for n in names if ids.get(n, 1) % 10 != 0]
    out = np.empty((len(train), 3, size, size), dtype=np.uint8)
    for i, n in enumerate(train):
        im = Image.open(os.path.join(d, "img_align_celeba", n)).convert("RGB")
        w, h = im.size
        s = size / min(w, h)
        im = im.resize((max(size, round(w * s)), max(size, round(h * s))), Image.BILINEAR)
        w, h = im.size
        l, t = (w - size) // 2, (h - size) // 2
        out[i] = np.asarray(im.crop((l, t, l + size, t + size))).transpose(2, 0, 1)
    return torch.from_numpy(out)


def weights_init(m):
    name = m.__class__.__name__
    if name.find("Conv") != -1:
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif name.find("BatchNorm") != -1:
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--celeba", required=True)
    p.add_argument("--minutes", type=float, default=30)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--samples", type=int, default=10000)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    x = load_faces(a.celeba, 64)
    g, d = G64(), D64()
    g.apply(weights_init)
    d.apply(weights_init)
    og = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    od = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = F.binary_cross_entropy_with_logits
    t0, updates, epochs = time.time(), 0, 0
    budget = a.minutes * 60
    while time.time() - t0 < budget:
        perm = torch.randperm(len(x))
        for i in range(0, len(x) - a.batch + 1, a.batch):
            xb = x[perm[i : i + a.batch]].float() / 127.5 - 1
            z = torch.randn(a.batch, 100)
            fake = g(z)
            od.zero_grad(set_to_none=True)
            lr, lf = d(xb), d(fake.detach())
            (bce(lr, torch.ones_like(lr)) + bce(lf, torch.zeros_like(lf))).backward()
            od.step()
            og.zero_grad(set_to_none=True)
            lf = d(fake)
            bce(lf, torch.ones_like(lf)).backward()
            og.step()
            updates += 1
            if time.time() - t0 >= budget:
                break
        epochs += 1
    secs = time.time() - t0
    # Samples as pytorch/examples makes its pictures: G in training mode, batches of 64 (batch statistics).
    with torch.no_grad():
        s = torch.cat([(g(torch.randn(64, 100)) + 1) / 2 for _ in range(-(-a.samples // 64))])[: a.samples]
    np.save(f"{a.out}-samples.npy", s.clamp(0, 1).numpy().astype(np.float32))
    info = {"recipe": "pytorch/examples dcgan, 64x64, ngf=ndf=64, Adam 2e-4 b1 0.5, batch %d" % a.batch,
            "seconds": secs, "updates": updates, "epochs_started": epochs, "train_images": len(x),
            "threads": a.threads, "torch": torch.__version__}
    json.dump(info, open(f"{a.out}.json", "w"), indent=1)
    print(json.dumps(info))


if __name__ == "__main__":
    main()
