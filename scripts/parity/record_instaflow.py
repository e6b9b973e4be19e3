"""Record the InstaFlow / 2-Rectified Flow parity fixture by running the official
``RectifiedFlowPipeline`` (gnobitab/InstaFlow ``code/pipeline_rf.py``, MIT) on zoo's tiny
random-weight modules.

Nothing of the reference is copied: its ``code/`` folder is put on ``sys.path`` from the location
given on the command line; the pipeline gets the very modules ``zoo_plugins.diffusion.testing``
builds (seeded: the test rebuilds them), SD 1.5's ``PNDMScheduler`` (the release's scheduler
class: it only supplies ``init_noise_sigma`` 1 and ``order`` 1 to the loop) and no safety
checker. Written: the final latents of each case (``output_type="latent"``), the images of the
first case (``output_type="pt"``, in [0, 1]), and the cases as json metadata.

Usage:
    python scripts/parity/record_instaflow.py --ref /tmp/ref_instaflow/code [--out tests/fixtures/instaflow]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]

#: prompts, negative prompt, guidance scale, steps, images per prompt, seed, height, width
CASES = [
    (["a red fox"], None, 0.0, 1, 1, 0, 32, 32),                                   # InstaFlow-0.9B: one step, no CFG
    (["a red fox", "the lazy cat on a sofa"], "blurry", 1.5, 4, 2, 3, 32, 32),    # 2-Rectified Flow: few steps, CFG, negatives
    (["A Cat"], None, 3.0, 2, 1, 7, 32, 32),                                       # CFG with the empty negative
    (["zebra yak quilt"], None, 1.0, 25, 1, 5, 32, 32),                            # 25 steps (the README's), CFG off at 1
    (["a bowl of fruit on a wooden table"], "dog", 2.0, 3, 1, 123, 48, 32),       # not square (6x4 latents), another seed
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ref", required=True, help="the reference's code/ folder (holding pipeline_rf.py)")
    ap.add_argument("--out", default=str(ROOT / "tests" / "fixtures" / "instaflow"))
    args = ap.parse_args()
    torch.set_num_threads(1)

    from zoo.compat.torchvision import ensure_torchvision

    ensure_torchvision()
    sys.path.insert(0, str(Path(args.ref).resolve()))
    from diffusers import PNDMScheduler
    from pipeline_rf import RectifiedFlowPipeline  # the reference, from the given folder

    from zoo_plugins.diffusion.testing import tiny_instaflow

    model = tiny_instaflow()
    te, vae = model.component("text_encoder"), model.component("vae")
    pipe = RectifiedFlowPipeline(vae=vae.vae, text_encoder=te.encoder, tokenizer=te.tokenizer, unet=model.unet,
                                 scheduler=PNDMScheduler(steps_offset=1, skip_prk_steps=True), safety_checker=None,
                                 feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    out: dict[str, torch.Tensor] = {}
    worst = 0.0
    for i, (prompts, neg, g, steps, n, seed, height, width) in enumerate(CASES):
        kw = dict(prompt=prompts, negative_prompt=[neg] * len(prompts) if neg else None, guidance_scale=g, num_inference_steps=steps,
                  num_images_per_prompt=n, height=height, width=width)
        ref = pipe(**kw, generator=torch.Generator().manual_seed(seed), output_type="latent").images
        out[f"case{i}.latents"] = ref.contiguous()
        mine = model.generate(prompts, neg, steps=steps, guidance_scale=g, num_images_per_prompt=n, height=height, width=width,
                              generator=torch.Generator().manual_seed(seed), return_latents=True)
        worst = max(worst, float((mine - ref).abs().max()))
        print(f"case {i}: latents {tuple(ref.shape)}, max|zoo - ref| {float((mine - ref).abs().max()):.3g}")
        if i == 0:
            out["case0.images"] = pipe(**kw, generator=torch.Generator().manual_seed(seed), output_type="pt").images.contiguous()
    from safetensors.torch import save_file

    target = Path(args.out)
    target.mkdir(parents=True, exist_ok=True)
    meta = {"cases": json.dumps(CASES), "reference": "gnobitab/InstaFlow code/pipeline_rf.py RectifiedFlowPipeline",
            "max_abs_diff_when_recorded": repr(worst), "torch": torch.__version__}
    save_file(out, str(target / "parity.safetensors"), metadata=meta)
    print(f"wrote {target / 'parity.safetensors'} ({(target / 'parity.safetensors').stat().st_size} bytes); worst diff {worst}")


if __name__ == "__main__":
    main()
