"""Text-to-image loops: zoo vs the diffusers pipeline on the same modules, and tome_sd's speed-up
against drift. Shrunk random-weight configs (CPU), latents out (no VAE decode on either side).

    python benchmarks/t2i.py speed  --family pixart_sigma --batches 1 4   # zoo loop vs PixArtSigmaPipeline
    python benchmarks/t2i.py speed  --family sd3 --batches 1 4            # zoo loop vs StableDiffusion3Pipeline
    python benchmarks/t2i.py speed  --family sd3 --batches 1 --slg 1 2 --slg-windows 0.01:0.2 0:1
                                    # the same with skip-layer guidance (record t2i_speed_sd3_slg.json)
    python benchmarks/t2i.py speed  --family instaflow --ref /tmp/ref_instaflow/code --steps 4 --guidance 1.5 0
                                    # zoo loop vs gnobitab/InstaFlow's RectifiedFlowPipeline (its code/ folder)
    python benchmarks/t2i.py tome                                          # tome_sd ratios on PixArt, SD3 and InstaFlow's UNet

``speed`` interleaves the two sides (CPU seconds, medians) with CFG on (2B rows on both sides;
``--guidance`` values <= 1 time the loop without CFG) and checks the latents; each side's peak memory is measured in a fresh child process (peak RSS of
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

    if family == "instaflow":  # SD 1.5's UNet layout (4 levels, 3 with cross-attention) at a quarter of the width, 1 layer per block
        return {"unet": {**T.TINY_UNET, "block_out_channels": [64, 128, 256, 256], "layers_per_block": 1, "cross_attention_dim": 256,
                         "attention_head_dim": 8, "norm_num_groups": 32, "sample_size": SIZE // 8,
                         "down_block_types": ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
                         "up_block_types": ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3},
                "clip": {**T.TINY_SD15_CLIP, "hidden_size": 256, "intermediate_size": 512, "num_attention_heads": 4}}
    if family == "pixart_sigma":
        return {"transformer": {**T.TINY_PIXART, "sample_size": SIZE // 8, "num_layers": 4, "num_attention_heads": 4,
                                "attention_head_dim": 32, "cross_attention_dim": 128, "caption_channels": 256, "norm_num_groups": 32},
                "t5": {**T.TINY_T5, "d_model": 256, "d_ff": 512, "num_heads": 4, "d_kv": 64, "num_layers": 2}}
    return {"transformer": {**T.TINY_SD3, "sample_size": SIZE // 8, "num_layers": 4, "num_attention_heads": 4, "attention_head_dim": 32,
                            "joint_attention_dim": 256, "caption_projection_dim": 128, "pooled_projection_dim": 128, "pos_embed_max_size": 64},
            "t5": {**T.TINY_T5, "d_model": 256, "d_ff": 512, "num_heads": 4, "d_kv": 64, "num_layers": 2},
            "clip": {**T.TINY_CLIP, "hidden_size": 64, "projection_dim": 64, "intermediate_size": 128}}


def build_instaflow(size: int = SIZE, ref: str | None = None):
    """(zoo InstaFlow, the official RectifiedFlowPipeline or None without ``ref``) sharing every module."""
    import torch

    from zoo.compat.torchvision import ensure_torchvision
    from zoo_plugins.diffusion import testing as T
    from zoo_plugins.diffusion.instaflow import CLIPTextEncoder, InstaFlow, InstaFlowConfig
    from zoo_plugins.diffusion.libs import diffusers_module, transformers_module

    ensure_torchvision()
    tf = transformers_module()
    cfg = _configs("instaflow")
    model = InstaFlow(InstaFlowConfig(unet={**cfg["unet"], "sample_size": size // 8})).eval()
    T._seed_all(model.unet, 20)
    te = CLIPTextEncoder(T._seed_all(tf.CLIPTextModel(tf.CLIPTextConfig.from_dict(cfg["clip"])), 21).eval(), T.tiny_clip_tokenizer())
    model.use_components(text_encoder=te, vae=T.tiny_sd15_vae())
    pipe = None
    if ref:
        sys.path.insert(0, str(Path(ref).resolve()))
        from pipeline_rf import RectifiedFlowPipeline  # the reference, from the folder given

        pipe = RectifiedFlowPipeline(vae=model.component("vae").vae, text_encoder=te.encoder, tokenizer=te.tokenizer, unet=model.unet,
                                     scheduler=diffusers_module().PNDMScheduler(steps_offset=1, skip_prk_steps=True), safety_checker=None,
                                     feature_extractor=None, requires_safety_checker=False)
        pipe.set_progress_bar_config(disable=True)
    torch.manual_seed(0)
    return model, pipe, {}


def build(family: str, size: int = SIZE, ref: str | None = None):
    """(zoo model, reference pipeline) sharing every module (seeded random weights)."""
    import torch

    if family == "instaflow":
        return build_instaflow(size, ref)

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


def _sides(family: str, batch: int, steps: int, size: int = SIZE, guidance: float = 4.5, ref: str | None = None,
           slg: dict[str, Any] | None = None):
    """(reference call, zoo call); ``slg`` (sd3): skip-layer guidance ``{layers, scale, start, stop}`` on both sides."""
    import torch

    model, pipe, call = build(family, size, ref)
    prompts = PROMPTS[:batch]
    g = guidance
    zoo_kw: dict[str, Any] = {"clean_caption": False} if family == "pixart_sigma" else {}  # as the pipeline call
    if slg:
        call = {**call, "skip_guidance_layers": list(slg["layers"]), "skip_layer_guidance_scale": slg["scale"],
                "skip_layer_guidance_start": slg["start"], "skip_layer_guidance_stop": slg["stop"]}
        zoo_kw["skip_layer_guidance"] = dict(slg)

    def ref():
        return pipe(prompts, guidance_scale=g, num_inference_steps=steps, height=size, width=size,
                    generator=torch.Generator().manual_seed(0), output_type="latent", **call).images

    def zoo():
        return model.generate(prompts, steps=steps, guidance_scale=g, height=size, width=size,
                              generator=torch.Generator().manual_seed(0), return_latents=True, **zoo_kw)

    return ref, zoo


def _status_mib(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(side: str, family: str, batch: int, steps: int, guidance: float = 4.5, ref: str | None = None,
          slg: dict[str, Any] | None = None) -> None:
    """One generation in this (fresh) process after the models are built; print the resident
    memory before it and the peak during it (MiB; Linux: the peak is reset through
    ``/proc/self/clear_refs`` so building the models does not count)."""
    import torch

    torch.set_num_threads(1)
    torch.set_grad_enabled(False)
    ref_fn, zoo = _sides(family, batch, steps, guidance=guidance, ref=ref, slg=slg)
    before = _status_mib("VmRSS")
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    except OSError:
        pass
    (ref_fn if side == "ref" else zoo)()
    print(json.dumps({"before": before, "after": _status_mib("VmHWM"), "process_peak": peak_rss_mib()}))


def _child_peak(side: str, family: str, batch: int, steps: int, guidance: float = 4.5, ref: str | None = None,
                slg: dict[str, Any] | None = None) -> dict[str, float]:
    cmd = [sys.executable, __file__, "child", side, family, str(batch), str(steps), str(guidance), ref or "-", json.dumps(slg) if slg else "-"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def speed(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(1)
    torch.set_grad_enabled(False)
    instaflow = args.family == "instaflow"
    ref_path = args.ref if instaflow else None
    has_ref = not instaflow or bool(ref_path and Path(ref_path, "pipeline_rf.py").exists())
    if instaflow and not has_ref:
        print(f"no pipeline_rf.py under --ref {ref_path!r}: timing zoo alone (the reference column is skipped)", flush=True)
        ref_path = None
    reference = ("gnobitab/InstaFlow RectifiedFlowPipeline (" + str(ref_path) + ")") if instaflow and has_ref else (
        None if instaflow else "diffusers (installed)")
    what = "the official RectifiedFlowPipeline" if instaflow else "the diffusers pipeline"
    slgs: list[dict[str, Any] | None] = [None]
    if args.slg:
        if args.family != "sd3":
            raise SystemExit("--slg (skip-layer guidance) is an SD3 option")
        slgs = [{"layers": args.slg, "scale": args.slg_scale, "start": float(w.split(":")[0]), "stop": float(w.split(":")[1])}
                for w in args.slg_windows]
    suffix = "_slg" if args.slg else ""
    run = start(f"t2i_speed_{args.family}{suffix}", title=f"{args.family}{' with skip-layer guidance' if args.slg else ''}: zoo loop vs {what} "
                "(shrunk, random weights)",
                kind="generator", threads=1, settings={k: str(v) for k, v in vars(args).items()}, reference=reference,
                results=args.results)
    rows = []
    for g, slg in [(g, slg) for g in (args.guidance if instaflow else [4.5]) for slg in slgs]:
        cfg = g > 1
        for b in args.batches:
            ref, zoo = _sides(args.family, b, args.steps, guidance=g, ref=ref_path, slg=slg)
            rt, zt, (ra, za) = interleave(ref if has_ref else None, zoo, args.reps)
            if args.no_memory:
                mem_ref = mem_zoo = {"after": float("nan"), "before": float("nan")}
            else:
                mem_zoo = _child_peak("zoo", args.family, b, args.steps, g, ref_path, slg)
                mem_ref = _child_peak("ref", args.family, b, args.steps, g, ref_path, slg) if has_ref else {"after": float("nan"), "before": float("nan")}
            slg_steps = [i for i in range(args.steps) if slg and args.steps * slg["start"] < i < args.steps * slg["stop"]]
            row = {"batch": b, "model": f"{args.family} (shrunk)", "guidance_scale": g,
                   "unit": f"images/CPU-s, batch {b}, {args.steps} steps, " + ("CFG" if cfg else "no CFG")
                   + (f", SLG layers {slg['layers']} on steps {slg_steps}" if slg else ""),
                   "zoo_per_s": b / zt[0], "steps": args.steps, "cfg_rows": 2 * b if cfg else b,
                   "zoo_cpu_s": zt[0], "zoo_images_per_s": b / zt[0],
                   "zoo_peak_rss_mib": mem_zoo["after"], "zoo_peak_growth_mib": mem_zoo["after"] - mem_zoo["before"]}
            if has_ref:
                row.update({"ref_per_s": b / rt[0], "speedup": rt[0] / zt[0], "ref_cpu_s": rt[0], "speedup_cpu": rt[0] / zt[0],
                            "speedup_wall": rt[1] / zt[1], "ref_images_per_s": b / rt[0], "ref_peak_rss_mib": mem_ref["after"],
                            "ref_peak_growth_mib": mem_ref["after"] - mem_ref["before"],
                            "latents_max_abs_diff": float((ra - za).abs().max()), "latents_abs_max": float(ra.abs().max())})
            if slg:
                row.update({"skip_layer_guidance": slg, "slg_steps": slg_steps})
            rows.append(row)
            print({k: (float(f"{v:.4g}") if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
            run.write(rows, notes=NOTES[args.family] + (NOTES["sd3_slg"] if args.slg else []))


NOTES = {
    "pixart_sigma": ["zoo: prompts and negatives through T5 in one batch trimmed to the longest real prompt (the pipeline: two T5 "
                     "calls on 300 padded tokens each), the cross-attention over the real tokens only (masked padding), the "
                     "learned-variance half dropped before the CFG combine",
                     "shrunk: 4 DiT blocks of width 128, T5 2 layers of width 256, 256 px (256 image tokens), DPM-Solver++"],
    "sd3": ["zoo: the encoders run prompts and negatives apart as the pipeline does (batch_text_encoders=False, the "
            "default; latents bitwise equal); no scheduler object; the rest is the same transformer call on 2B rows",
            "shrunk: 4 MMDiT blocks of width 128, CLIPs width 64, T5 2 layers of width 256 on 256 padded tokens (no mask: kept), 256 px"],
    "sd3_slg": ["skip-layer guidance: on the steps of its window both sides run one more transformer call on the B conditional "
                "rows with the layers skipped (diffusers' skip_layers) and add scale * (cond - skipped); zoo's is "
                "zoo.sampling.sample_flow(skip_guidance=, skip_fn=)"],
    "instaflow": ["both sides run the same UNet calls on the same rows (B, or 2B with CFG) and the CLIP encoder apart on prompts "
                  "and negatives; zoo's loop is zoo.sampling.sample_flow (uniform Euler, velocity negated), the pipeline's its own "
                  "Euler loop: the work is the same, the ratio measures the loops' overhead",
                  "shrunk: SD 1.5's UNet layout at a quarter of the width (64/128/256/256, 1 layer per block, cross-attention "
                  "width 256), CLIP 2 layers of width 256, 256 px (32x32 latents)"],
}


def tome(args: argparse.Namespace) -> None:
    import torch

    import zoo as zoo_pkg
    torch.set_num_threads(1)
    torch.set_grad_enabled(False)
    reducer = zoo_pkg.load("tome_sd")
    run = start("t2i_tome_sd", title="tome_sd: denoiser speed-up against drift (shrunk, random weights)", kind="reducer",
                threads=1, settings={k: str(v) for k, v in vars(args).items()}, reference=None, results=args.results)
    rows = []
    size = args.size

    def psnr(a, b):
        return float(10 * torch.log10(4.0 / ((a - b) ** 2).mean()))

    lpips_net = _lpips_network(args.lpips_weights)
    if lpips_net is None:
        print("LPIPS skipped: no AlexNet weights (pass --lpips-weights alexnet-owt-7be5be79.pth or put it in zoo's metric cache)", flush=True)

    def lpips(a, b):
        return None if lpips_net is None else float(lpips_net(a.clamp(-1, 1), b.clamp(-1, 1)).mean())

    setups = [  # (row label, family, steps, guidance, tokens merged per self-attention call at the top level)
        ("pixart_sigma (shrunk)", "pixart_sigma", args.steps, 4.5, (size // 16) ** 2),
        ("sd3 (shrunk)", "sd3", args.steps, 4.5, (size // 16) ** 2),
        ("InstaFlow UNet (shrunk), 1 step", "instaflow", 1, 0.0, (size // 8) ** 2),
        ("2-Rectified Flow UNet (shrunk), 2 steps, CFG 1.5", "instaflow", 2, 1.5, (size // 8) ** 2),
    ]
    built: dict[str, Any] = {}
    for label, family, steps, guidance, tokens in setups:
        if args.only and family not in args.only:
            continue
        if family not in built:
            built[family] = build(family, size)[0]
        model = built[family]
        vae = model.component("vae")

        def gen(model=model, steps=steps, guidance=guidance):
            return model.generate(PROMPTS[:1], steps=steps, guidance_scale=guidance, height=size, width=size, seed=0, return_latents=True)

        base_t, base = None, None
        for ratio in args.ratios:
            with reducer.apply(model, ratio=ratio):
                _, t, (_, z) = interleave(None, gen, args.reps)
            if ratio == 0:
                base_t, base, base_img = t, z, vae.decode_raw(vae.from_model_space(z))
            img = vae.decode_raw(vae.from_model_space(z))
            cos = float(torch.nn.functional.cosine_similarity(z.flatten(), base.flatten(), dim=0))
            rows.append({"model": label, "config": f"zoo tome_sd ratio={ratio}" if ratio else "baseline", "steps": steps,
                         "guidance_scale": guidance, "tokens": tokens, "ratio": ratio, "cpu_s": t[0], "img_s": 1 / t[0],
                         "speedup": base_t[0] / t[0], "cosine": cos, "latent_cosine": cos,
                         "image_psnr_db": None if ratio == 0 else psnr(img, base_img),
                         "image_lpips": None if ratio == 0 else lpips(img, base_img)})
            print(rows[-1], flush=True)
            run.write(rows, notes=TOME_NOTES)


def _lpips_network(path: str | None):
    """LPIPS (alex) through zoo's metric weights, or None when the AlexNet file is neither given nor
    in zoo's metric cache (nothing is downloaded here)."""
    from zoo.evaluation.metric_weights import METRIC_WEIGHTS, metric_cache_dir

    cached = metric_cache_dir() / METRIC_WEIGHTS["lpips-alex"].filename
    if path is None and not cached.exists():
        return None
    from zoo.evaluation.metrics import lpips_network

    return lpips_network("alex", path or cached)


TOME_NOTES = ["every row: a whole generation at batch 1 (DiT/MMDiT: CFG 4.5, 2 rows; InstaFlow: 1 step without CFG; 2-Rectified "
              "Flow: 2 steps with CFG 1.5, 2 rows), latents and decoded images compared with ratio 0 (which is bit-exact to no "
              "patch); DiT/MMDiT: tome_sd on every block; UNet: merging in its top-resolution blocks (max_downsample=1, tomesd's "
              "default), the shrunk SD 1.5 layout of the speed benchmark (64/128/256/256 channels)",
              "LPIPS (alex, between decoded images) is reported when its AlexNet weights are given (--lpips-weights) or cached; "
              "they could not be downloaded here (image_lpips null), PSNR between decoded images instead",
              "random weights: drift on trained weights is smaller (image tokens are smoother); the speed-up is what the ratio buys"]


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        ref = sys.argv[7] if len(sys.argv) > 7 and sys.argv[7] != "-" else None
        slg = json.loads(sys.argv[8]) if len(sys.argv) > 8 and sys.argv[8] != "-" else None
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6]), ref, slg)
        return
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["speed", "tome"])
    p.add_argument("--family", choices=["pixart_sigma", "sd3", "instaflow"], default="pixart_sigma")
    p.add_argument("--ref", default=None, help="instaflow: gnobitab/InstaFlow's code/ folder (pipeline_rf.py); absent: zoo alone")
    p.add_argument("--guidance", type=float, nargs="+", default=[1.5, 0.0], help="instaflow speed: guidance scales (<= 1: no CFG)")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory children")
    p.add_argument("--lpips-weights", default=None, help="tome: torchvision's alexnet-owt-7be5be79.pth for LPIPS (default: zoo's metric cache)")
    p.add_argument("--only", nargs="+", choices=["pixart_sigma", "sd3", "instaflow"], default=None, help="tome: these families' rows only")
    p.add_argument("--slg", type=int, nargs="+", default=None, help="sd3 speed: skip-layer guidance on these blocks (record t2i_speed_sd3_slg)")
    p.add_argument("--slg-windows", nargs="+", default=["0.01:0.2"], help="sd3 --slg: start:stop fractions of the steps, one row set each")
    p.add_argument("--slg-scale", type=float, default=2.5, help="sd3 --slg: skip-layer guidance scale (Stability's 2.5)")
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
