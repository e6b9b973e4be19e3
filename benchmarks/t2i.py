"""Text-to-image loops: zoo vs the diffusers pipeline on the same modules, and tome_sd's speed-up
against drift. Shrunk random-weight configs (CPU), latents out (no VAE decode on either side).

    python benchmarks/t2i.py speed  --family pixart_sigma --batches 1 4   # zoo loop vs PixArtSigmaPipeline
    python benchmarks/t2i.py speed  --family sd3 --batches 1 4            # zoo loop vs StableDiffusion3Pipeline
    python benchmarks/t2i.py tome                                          # tome_sd ratios on PixArt, SD3 and a UNet

``speed`` interleaves the two sides (CPU seconds, medians) with CFG on (2B rows on both sides)
and checks the latents; each side's peak memory is measured in a fresh child process (peak RSS of
one generation after the same imports and builds: the peak RSS reset before generating). ``tome`` times the denoiser with tome_sd at ratio 0, 0.3,
0.5 and 0.7 and reports the cosine between latents (and PSNR between decoded images) against
ratio 0. Records go to ``benchmarks/results/t2i_<mode>.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.append(str(Path(__file__).resolve().parent))

from _generator import interleave  # noqa: E402
from _record import peak_rss_mib, start  # noqa: E402

SIZE = 256  # pixels: 32x32 latents, 16x16 = 256 image tokens at patch 2
PROMPTS = ["a red fox in the snow", "an astronaut riding a horse", "a bowl of fruit", "a lazy dog on a sofa"]


def _configs(family: str) -> dict[str, Any]:
    from zoo_plugins.diffusion import testing as T

    if family == "pixart_sigma":
        return {"transformer": {**T.TINY_PIXART, "sample_size": SIZE // 8, "num_layers": 4, "num_attention_heads": 4,
                                "attention_head_dim": 32, "cross_attention_dim": 128, "caption_channels": 256, "norm_num_groups": 32},
                "t5": {**T.TINY_T5, "d_model": 256, "d_ff": 512, "num_heads": 4, "d_kv": 64, "num_layers": 2}}
    return {"transformer": {**T.TINY_SD3, "sample_size": SIZE // 8, "num_layers": 4, "num_attention_heads": 4, "attention_head_dim": 32,
                            "joint_attention_dim": 256, "caption_projection_dim": 128, "pooled_projection_dim": 128, "pos_embed_max_size": 64},
            "t5": {**T.TINY_T5, "d_model": 256, "d_ff": 512, "num_heads": 4, "d_kv": 64, "num_layers": 2},
            "clip": {**T.TINY_CLIP, "hidden_size": 64, "projection_dim": 64, "intermediate_size": 128}}


def build(family: str, size: int = SIZE):
    """(zoo model, diffusers pipeline) sharing every module (seeded random weights)."""
    import torch

    from zoo.compat.torchvision import ensure_torchvision
    from zoo_plugins.diffusion import testing as T
    from zoo_plugins.diffusion.components import TextEncoder
    from zoo_plugins.diffusion.libs import diffusers_module, transformers_module

    ensure_torchvision()
    d, tf = diffusers_module(), transformers_module()
    cfg = _configs(family)
    cfg["transformer"]["sample_size"] = size // 8
    vae = T.tiny_vae() if family == "pixart_sigma" else T.tiny_sd3_vae()
    t5 = T._seed_all(tf.T5EncoderModel(tf.T5Config.from_dict(cfg["t5"])), 0).eval()
    if family == "pixart_sigma":
        from zoo_plugins.diffusion.config import PixArtSigmaConfig
        from zoo_plugins.diffusion.pixart import PixArtSigma

        model = PixArtSigma(PixArtSigmaConfig(transformer=cfg["transformer"])).eval()
        T._seed_all(model.transformer, 2)
        te = TextEncoder(t5, T.tiny_t5_tokenizer(), max_length=300)
        model.use_components(text_encoder=te, vae=vae)
        pipe = d.PixArtSigmaPipeline(tokenizer=te.tokenizer, text_encoder=t5, vae=vae.vae, transformer=model.transformer,
                                     scheduler=model.scheduler())
        call = dict(use_resolution_binning=False, clean_caption=False)
    else:
        from zoo_plugins.diffusion.config import SD3Config
        from zoo_plugins.diffusion.sd3 import SD3TextEncoders, StableDiffusion3

        model = StableDiffusion3(SD3Config(transformer=cfg["transformer"])).eval()
        T._seed_all(model.transformer, 12)
        clips = [T._seed_all(tf.CLIPTextModelWithProjection(tf.CLIPTextConfig.from_dict(cfg["clip"])), 10 + i).eval() for i in range(2)]
        toks = [T.tiny_clip_tokenizer(), T.tiny_clip_tokenizer(), T.tiny_t5_tokenizer()]
        te = SD3TextEncoders(clips[0], clips[1], t5, toks)
        model.use_components(text_encoders=te, vae=vae)
        pipe = d.StableDiffusion3Pipeline(transformer=model.transformer, scheduler=d.FlowMatchEulerDiscreteScheduler(shift=3.0),
                                          vae=vae.vae, text_encoder=clips[0], tokenizer=toks[0], text_encoder_2=clips[1],
                                          tokenizer_2=toks[1], text_encoder_3=t5, tokenizer_3=toks[2])
        call = {}
    pipe.set_progress_bar_config(disable=True)
    torch.manual_seed(0)
    return model, pipe, call


def _sides(family: str, batch: int, steps: int, size: int = SIZE):
    import torch

    model, pipe, call = build(family, size)
    prompts = PROMPTS[:batch]
    g = 4.5

    def ref():
        return pipe(prompts, guidance_scale=g, num_inference_steps=steps, height=size, width=size,
                    generator=torch.Generator().manual_seed(0), output_type="latent", **call).images

    def zoo():
        return model.generate(prompts, steps=steps, guidance_scale=g, height=size, width=size,
                              generator=torch.Generator().manual_seed(0), return_latents=True)

    return ref, zoo


def _status_mib(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(side: str, family: str, batch: int, steps: int) -> None:
    """One generation in this (fresh) process after the models are built; print the resident
    memory before it and the peak during it (MiB; Linux: the peak is reset through
    ``/proc/self/clear_refs`` so building the models does not count)."""
    import torch

    torch.set_num_threads(1)
    torch.set_grad_enabled(False)
    ref, zoo = _sides(family, batch, steps)
    before = _status_mib("VmRSS")
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    except OSError:
        pass
    (ref if side == "ref" else zoo)()
    print(json.dumps({"before": before, "after": _status_mib("VmHWM"), "process_peak": peak_rss_mib()}))


def _child_peak(side: str, family: str, batch: int, steps: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "child", side, family, str(batch), str(steps)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def speed(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(1)
    torch.set_grad_enabled(False)
    run = start(f"t2i_speed_{args.family}", title=f"{args.family}: zoo loop vs the diffusers pipeline (shrunk, random weights)",
                kind="generator", threads=1, settings={k: str(v) for k, v in vars(args).items()}, reference="diffusers (installed)",
                results=args.results)
    rows = []
    for b in args.batches:
        ref, zoo = _sides(args.family, b, args.steps)
        rt, zt, (ra, za) = interleave(ref, zoo, args.reps)
        mem_ref, mem_zoo = _child_peak("ref", args.family, b, args.steps), _child_peak("zoo", args.family, b, args.steps)
        row = {"batch": b, "model": f"{args.family} (shrunk)", "unit": f"images/CPU-s, batch {b}, {args.steps} steps, CFG",
               "zoo_per_s": b / zt[0], "ref_per_s": b / rt[0], "speedup": rt[0] / zt[0], "steps": args.steps, "cfg_rows": 2 * b,
               "zoo_cpu_s": zt[0], "ref_cpu_s": rt[0], "speedup_cpu": rt[0] / zt[0], "speedup_wall": rt[1] / zt[1],
               "zoo_images_per_s": b / zt[0], "ref_images_per_s": b / rt[0],
               "zoo_peak_rss_mib": mem_zoo["after"], "ref_peak_rss_mib": mem_ref["after"],
               "zoo_peak_growth_mib": mem_zoo["after"] - mem_zoo["before"], "ref_peak_growth_mib": mem_ref["after"] - mem_ref["before"],
               "latents_max_abs_diff": float((ra - za).abs().max()), "latents_abs_max": float(ra.abs().max())}
        rows.append(row)
        print({k: (float(f"{v:.4g}") if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
        run.write(rows, notes=NOTES[args.family])


NOTES = {
    "pixart_sigma": ["zoo: prompts and negatives through T5 in one batch trimmed to the longest real prompt (the pipeline: two T5 "
                     "calls on 300 padded tokens each), the cross-attention over the real tokens only (masked padding), the "
                     "learned-variance half dropped before the CFG combine",
                     "shrunk: 4 DiT blocks of width 128, T5 2 layers of width 256, 256 px (256 image tokens), DPM-Solver++"],
    "sd3": ["zoo: the encoders run prompts and negatives apart as the pipeline does (batch_text_encoders=False, the default "
            "since the committed record, which measured one batched call: no difference in speed); no scheduler object; the "
            "rest is the same transformer call on 2B rows",
            "shrunk: 4 MMDiT blocks of width 128, CLIPs width 64, T5 2 layers of width 256 on 256 padded tokens (no mask: kept), 256 px"],
}


def tome(args: argparse.Namespace) -> None:
    import torch

    import zoo as zoo_pkg
    from zoo_plugins.diffusion.testing import tiny_unet

    torch.set_num_threads(1)
    torch.set_grad_enabled(False)
    reducer = zoo_pkg.load("tome_sd")
    run = start("t2i_tome_sd", title="tome_sd: denoiser speed-up against drift (shrunk, random weights)", kind="reducer",
                threads=1, settings={k: str(v) for k, v in vars(args).items()}, reference=None, results=args.results)
    rows = []
    size = args.size

    def psnr(a, b):
        return float(10 * torch.log10(4.0 / ((a - b) ** 2).mean()))

    for family in ("pixart_sigma", "sd3"):
        model, _, _ = build(family, size)
        vae = model.component("vae")

        def gen(model=model):
            return model.generate(PROMPTS[:1], steps=args.steps, guidance_scale=4.5, height=size, width=size, seed=0, return_latents=True)

        base_t, base = None, None
        for ratio in args.ratios:
            with reducer.apply(model, ratio=ratio):
                _, t, (_, z) = interleave(None, gen, args.reps)
            if ratio == 0:
                base_t, base, base_img = t, z, vae.decode_raw(vae.from_model_space(z))
            img = vae.decode_raw(vae.from_model_space(z))
            cos = float(torch.nn.functional.cosine_similarity(z.flatten(), base.flatten(), dim=0))
            rows.append({"model": f"{family} (shrunk)", "config": f"zoo tome_sd ratio={ratio}" if ratio else "baseline",
                         "tokens": (size // 16) ** 2, "ratio": ratio, "cpu_s": t[0], "img_s": 1 / t[0], "speedup": base_t[0] / t[0], "cosine": cos,
                         "latent_cosine": cos,
                         "image_psnr_db": None if ratio == 0 else psnr(img, base_img)})
            print(rows[-1], flush=True)
            run.write(rows, notes=TOME_NOTES)
    unet = tiny_unet(block_out_channels=[64, 128], cross_attention_dim=64, attention_head_dim=8, norm_num_groups=32, sample_size=size // 8)
    g = torch.Generator().manual_seed(0)
    x, ctx = torch.randn(2, 4, size // 8, size // 8, generator=g), torch.randn(2, 77, 64, generator=g)

    def step():
        return unet(x, torch.tensor([500, 500]), encoder_hidden_states=ctx).sample

    for ratio in args.ratios:
        with reducer.apply(unet, ratio=ratio):
            _, t, (_, out) = interleave(None, step, args.reps)
        if ratio == 0:
            base_t, base = t, out
        cos = float(torch.nn.functional.cosine_similarity(out.flatten(), base.flatten(), dim=0))
        rows.append({"model": "UNet, SD 1.5 layout as InstaFlow's (shrunk)", "config": f"zoo tome_sd ratio={ratio}" if ratio else "baseline",
                     "tokens": (size // 8) ** 2, "ratio": ratio, "cpu_s": t[0], "img_s": 1 / t[0], "speedup": base_t[0] / t[0], "cosine": cos, "latent_cosine": cos,
                     "image_psnr_db": None})
        print(rows[-1], flush=True)
        run.write(rows, notes=TOME_NOTES)


TOME_NOTES = ["DiT/MMDiT rows: a whole generation (CFG 4.5, batch 1: 2 rows) with tome_sd on every block, latents and decoded "
              "images compared with ratio 0 (which is bit-exact to no patch); UNet row: one denoiser call at batch 2 (CFG rows), "
              "merging in its top-resolution blocks (max_downsample=1, tomesd's default)",
              "LPIPS is not reported: its network weights cannot be downloaded here; PSNR between decoded images instead",
              "random weights: drift on trained weights is smaller (image tokens are smoother); the speed-up is what the ratio buys"]


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
        return
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["speed", "tome"])
    p.add_argument("--family", choices=["pixart_sigma", "sd3"], default="pixart_sigma")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 4])
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--size", type=int, default=512, help="tome: image side (512: 1024 DiT tokens, 4096 UNet tokens)")
    p.add_argument("--ratios", type=float, nargs="+", default=[0.0, 0.3, 0.5, 0.7])
    p.add_argument("--results", default=None, help="results folder (default benchmarks/results)")
    args = p.parse_args()
    speed(args) if args.mode == "speed" else tome(args)


if __name__ == "__main__":
    main()
