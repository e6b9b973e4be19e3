"""MAR generation speed: zoo vs LTH14/mar on the same weights, labels and seed, in one run
(interleaved repetitions, medians of CPU seconds; the machine is shared).

The reference's default sampler (README FID settings: 256 AR iterations, 100 diffusion steps,
cfg 2.9 linear, temperature 1.0) on MAR-B at full size costs ~51 TFLOP per image (47 transformer,
3.5 head; MAR-L 118, MAR-H 229), about 15 CPU-minutes per image here,
so the default run keeps the sampler and the token layout (16x16 KL-16 latents, buffer 64) and
SHRINKS the transformer (``--width``/``--depth``, default 256 x 4 + 4, head 3 x 256) and the AR
iterations (``--iters``, default 64, the README's "much faster" setting). ``--full`` measures
MAR-B's real size (slow). Both sides run CFG as 2B rows; zoo caches the class buffer, the head's
time embeddings and its condition projection (the reference recomputes both at each of the 100
diffusion steps). Latents (before the VAE) are compared; the VAE decode is the kl_vae
benchmark's.

Reported per batch: images/s (CPU time) for both, the ratio, the transformer/head GFLOP and the
share of this CPU's fp32 matmul peak (a large square GEMM at 1 thread, measured in the run).

Usage:
    flock /tmp/zoo_heavy.lock python -P benchmarks/mar.py --ref /tmp/ref/mar [--batches 1 8] [--reps 2]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parent))  # _generator, _record, also under `python -P`

import torch  # noqa: E402
from _generator import begin, matmul_peak, parser, run_batches  # noqa: E402

NOTES = ["images/s from CPU seconds (time.process_time), 1 thread, medians of interleaved runs; latents only (no VAE)",
         "shrunk transformer unless --full (MAR-B at the README's 256 x 100-step settings: ~51 TFLOP, ~15 CPU-minutes per image here)",
         "% of peak: transformer + head matmul GFLOP / zoo CPU seconds over a 2048^3 fp32 GEMM measured in the same run",
         "seed: zoo seed=s, orders='numpy' == reference after torch.manual_seed(s); np.random.seed(s)"]


def gflop(cfg, batch: int, iters: int, diff_steps: int) -> tuple[float, float]:
    """Matmul GFLOP of one generation (CFG rows): transformer passes, diffusion head."""
    from zoo.sampling.blocks import masked_set_counts

    rows, n, nb = 2 * batch, cfg.seq_len, cfg.buffer_size
    d, dd, w = cfg.encoder_embed_dim, cfg.decoder_embed_dim, cfg.diffloss_w
    tr = head = 0.0
    left = n
    counts = masked_set_counts(n, iters)
    for i, m in enumerate(counts):
        le, ld = nb + (n - left), nb + n  # encoder: buffer + known tokens; decoder: buffer + all
        tr += rows * (cfg.encoder_depth * (24 * le * d * d + 4 * le * le * d) + cfg.decoder_depth * (24 * ld * dd * dd + 4 * ld * ld * dd))
        pred = left if i == len(counts) - 1 else left - m
        head += diff_steps * rows * pred * (cfg.diffloss_d * 2 * 5 * w * w + 2 * 3 * w * w)  # res blocks (mlp 2w^2 + adaLN 3w^2) + final
        left = m
    return tr / 1e9, head / 1e9


def build(ref: Path | None, cfg_kw: dict):
    from zoo_plugins.mar.config import MARConfig
    from zoo_plugins.mar.model import MAR

    from zoo.testing.weights import default_init, seeded_state_dict, state_manifest

    cfg = MARConfig(**cfg_kw)
    zoo_model = MAR(cfg).eval()
    man = state_manifest(zoo_model)
    sd = seeded_state_dict(man, init=lambda k, s: (0.0, 0.02) if k.startswith("diffloss.net.final_layer.linear.") else default_init(k, s))
    zoo_model.load_state_dict(sd, strict=True)
    if ref is None:
        return cfg, zoo_model, None
    from functools import partial

    from zoo.compat.torchvision import ensure_torchvision

    ensure_torchvision()
    torch.Tensor.cuda = lambda self, *a, **k: self  # the reference hard-codes .cuda()
    sys.path.insert(0, str(ref))
    from models import mar as refmar  # noqa: PLC0415 - the reference

    kw = {k: getattr(cfg, k) for k in ("img_size", "vae_stride", "patch_size", "encoder_embed_dim", "encoder_depth", "encoder_num_heads",
                                        "decoder_embed_dim", "decoder_depth", "decoder_num_heads", "vae_embed_dim", "class_num",
                                        "buffer_size", "diffloss_d", "diffloss_w")}
    ref_model = refmar.MAR(mlp_ratio=4.0, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), num_sampling_steps=cfg.num_sampling_steps, **kw).eval()
    ref_model.load_state_dict(sd, strict=True)
    return cfg, zoo_model, ref_model


def main() -> None:
    ap = parser(__doc__, "root of an LTH14/mar checkout (omit: zoo alone)")
    ap.add_argument("--full", action="store_true", help="MAR-B at its real size (very slow on CPU)")
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--iters", type=int, default=64, help="AR iterations (README FID setting: 256)")
    ap.add_argument("--diffusion-steps", default="100")
    ap.add_argument("--cfg", type=float, default=2.9)
    args = ap.parse_args()
    if args.full:
        cfg_kw = {"num_sampling_steps": args.diffusion_steps}
    else:
        w, dp = args.width, args.depth
        cfg_kw = dict(encoder_embed_dim=w, encoder_depth=dp, encoder_num_heads=w // 64, decoder_embed_dim=w, decoder_depth=dp,
                      decoder_num_heads=w // 64, diffloss_d=3, diffloss_w=w, num_sampling_steps=args.diffusion_steps)
    run = begin("mar", "MAR generation (masked AR + MLP diffusion head; latents)", args)
    cfg, zm, rm = build(args.ref, cfg_kw)
    import numpy as np

    peak = matmul_peak()
    from zoo.sampling.ddpm import space_timesteps

    steps_n = len(space_timesteps(1000, args.diffusion_steps))

    def calls(b: int, labels: list[int]):
        def ref_fn():
            torch.manual_seed(0)
            np.random.seed(0)
            return rm.sample_tokens(bsz=len(labels), num_iter=args.iters, cfg=args.cfg, cfg_schedule="linear",
                                    labels=torch.tensor(labels), temperature=1.0)

        return ref_fn, lambda: zm.generate(labels, steps=args.iters, guidance_scale=args.cfg, seed=0, orders="numpy",
                                           return_latents=True)

    def fields(b: int, zt, ra, za) -> dict:
        tr, hd = gflop(cfg, b, args.iters, steps_n)
        size = "MAR-B (768 x 12 + 12, head 6 x 1024)" if args.full else \
            f"shrunk MAR ({cfg.encoder_embed_dim} x {cfg.encoder_depth} + {cfg.decoder_depth}, head 3 x {cfg.diffloss_w})"
        return {"model": f"{size}, 16x16 latents, {args.iters} AR iters, {steps_n} diffusion steps, cfg {args.cfg} linear",
                "transformer_gflop": tr, "head_gflop": hd, "gflops_achieved": (tr + hd) / zt[0], "matmul_peak_gflops": peak,
                "pct_of_peak": 100 * (tr + hd) / zt[0] / peak}

    run_batches(run, args, calls, fields, NOTES, reps=lambda b: args.reps if b == 1 else max(1, args.reps - 1), warm=False)


if __name__ == "__main__":
    main()
