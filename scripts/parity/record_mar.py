"""Record the MAR generator parity fixtures from LTH14/mar (a checkout in /tmp, never committed).

Writes to ``tests/fixtures/mar/``:

* ``manifests.json.gz`` — ``{"mar_base"|"mar_large"|"mar_huge": {key: [shape, dtype]}}`` of the
  reference ``MAR`` built on the meta device at each published size (with its README's
  ``--diffloss_d``/``--diffloss_w``);
* ``cases.json`` — the small config (zoo's :class:`MARConfig` fields), the reference's manifest at
  it, and the sampling cases;
* ``cases.safetensors`` — per case, the reference's ``sample_tokens`` output ``[B, 16, h, w]``.

Randomness: each case runs after ``torch.manual_seed(seed); np.random.seed(seed)`` (the
reference draws orders with ``np.random.shuffle`` and noise with ``torch.randn`` from the global
RNGs); zoo reproduces it with ``generate(..., seed=seed, orders="numpy")``. Weights come from
``zoo.testing.seeded_state_dict(manifest, seed=0)`` (std 0.02 for the keys under
``small_std_prefixes``). The reference's ``.cuda()`` calls are made
no-ops (CPU, float32, no autocast).

Usage::

    flock /tmp/zoo_heavy.lock python scripts/parity/record_mar.py --mar /tmp/ref/mar
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "mar"
SMALL = dict(img_size=64, vae_stride=16, patch_size=1, vae_embed_dim=16, encoder_embed_dim=32, encoder_depth=2,
             encoder_num_heads=2, decoder_embed_dim=32, decoder_depth=2, decoder_num_heads=2, mlp_ratio=4.0, class_num=10,
             buffer_size=4, diffloss_d=2, diffloss_w=48)
PUBLISHED = {"mar_base": (6, 1024), "mar_large": (8, 1280), "mar_huge": (12, 1536)}  # README: --diffloss_d/--diffloss_w
# name: labels, seed, num_iter, cfg, cfg_schedule, temperature, num_sampling_steps
# the head's output layer is drawn with std 0.02 (as its zero init, nearly): with 1/sqrt(fan_in) weights
# the learned-variance channels leave [-1, 1] and the samples blow up, which hides nothing but reads badly
SMALL_STD_PREFIXES = ("diffloss.net.final_layer.linear.",)
CASES = {
    "cfg_linear": ([3, 7], 0, 4, 2.5, "linear", 1.0, "10"),
    "no_cfg": ([1], 1, 16, 1.0, "linear", 0.95, "5"),
    "cfg_constant": ([0, 9], 2, 3, 3.0, "constant", 1.0, "ddim5"),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mar", required=True, help="root of an LTH14/mar checkout")
    args = ap.parse_args()
    import numpy as np
    import torch
    from safetensors.torch import save_file

    from zoo.compat.torchvision import ensure_torchvision
    from zoo.testing.weights import seeded_state_dict, state_manifest

    ensure_torchvision()  # timm imports torchvision
    torch.set_grad_enabled(False)
    torch.set_num_threads(1)
    torch.Tensor.cuda = lambda self, *a, **k: self  # the reference hard-codes .cuda()
    sys.path.insert(0, str(Path(args.mar).resolve()))
    from diffusion import create_diffusion
    from models import mar as ref

    OUT.mkdir(parents=True, exist_ok=True)
    manifests = {}
    for name, (d, w) in PUBLISHED.items():
        with torch.device("meta"):
            m = getattr(ref, name)(img_size=256, vae_stride=16, patch_size=1, vae_embed_dim=16, buffer_size=64,
                                   diffloss_d=d, diffloss_w=w, num_sampling_steps="100")
        manifests[name] = {k: [list(s), t] for k, (s, t) in state_manifest(m).items()}
    (OUT / "manifests.json.gz").write_bytes(gzip.compress(json.dumps(manifests, sort_keys=True).encode(), mtime=0))

    import torch.nn as nn
    from functools import partial

    kw = {k: v for k, v in SMALL.items() if k not in ("mlp_ratio",)}
    model = ref.MAR(norm_layer=partial(nn.LayerNorm, eps=1e-6), mlp_ratio=SMALL["mlp_ratio"], num_sampling_steps="10", **kw)
    manifest = state_manifest(model)
    from zoo.testing.weights import default_init

    def init(key, shape):
        return (0.0, 0.02) if key.startswith(SMALL_STD_PREFIXES) else default_init(key, shape)

    model.load_state_dict(seeded_state_dict(manifest, seed=0, init=init), strict=True)
    model.eval()
    tensors, cases = {}, {}
    for case, (labels, seed, num_iter, cfg, schedule, temp, steps) in CASES.items():
        model.diffloss.gen_diffusion = create_diffusion(timestep_respacing=steps, noise_schedule="cosine")
        torch.manual_seed(seed)
        np.random.seed(seed)
        out = model.sample_tokens(bsz=len(labels), num_iter=num_iter, cfg=cfg, cfg_schedule=schedule,
                                  labels=torch.tensor(labels), temperature=temp)
        tensors[case] = out.contiguous()
        cases[case] = dict(labels=labels, seed=seed, steps=num_iter, guidance_scale=cfg, cfg_schedule=schedule,
                           temperature=temp, diffusion_steps=steps)
        print(case, tuple(out.shape), float(out.abs().mean()))
    save_file(tensors, str(OUT / "cases.safetensors"))
    (OUT / "cases.json").write_text(json.dumps({"config": SMALL, "cases": cases, "small_std_prefixes": list(SMALL_STD_PREFIXES),
                                                "manifest": {k: [list(s), t] for k, (s, t) in manifest.items()}},
                                               indent=0, sort_keys=True) + "\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
