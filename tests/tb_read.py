"""Reader check run by tests/tensorboard.rs: a run's tb/ folder as TensorBoard's own
EventAccumulator loads it (every event kept: size guidance 0).

usage: tb_read.py TB_DIR [--no-purge]   prints JSON {"scalars": {tag: [[step, value]]},
"images": {tag: [{"step", "width", "height", "png_width", "png_height", "sha256"}]}, "files": N}
"""
import hashlib
import json
import os
import struct
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

path = sys.argv[1]
purge = "--no-purge" not in sys.argv[2:]
acc = EventAccumulator(path, size_guidance={"scalars": 0, "images": 0}, purge_orphaned_data=purge)
acc.Reload()
tags = acc.Tags()
out = {"scalars": {}, "images": {}, "files": sum("tfevents" in f for f in os.listdir(path))}
for t in tags["scalars"]:
    out["scalars"][t] = [[e.step, e.value] for e in acc.Scalars(t)]
for t in tags["images"]:
    imgs = []
    for e in acc.Images(t):
        png = e.encoded_image_string
        assert png[:8] == b"\x89PNG\r\n\x1a\n", png[:8]
        w, h = struct.unpack(">II", png[16:24])
        imgs.append(
            {
                "step": e.step,
                "width": e.width,
                "height": e.height,
                "png_width": w,
                "png_height": h,
                "sha256": hashlib.sha256(png).hexdigest(),
            }
        )
    out["images"][t] = imgs
print(json.dumps(out))
