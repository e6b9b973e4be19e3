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

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parent))  # _record, also under `python -P`

import torch  # noqa: E402
from _record import add_results_option, start  # noqa: E402


def timed(fn):
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    return time.process_time() - c0, time.perf_counter() - t0, out


def matmul_peak(n: int = 2048, reps: int = 5) -> float:
    """fp32 GFLOP/s (CPU time) of an ``n x n x n`` GEMM: this CPU's practical peak at the set thread count."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    c0 = time.process_time()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.process_time() - c0) / 1e9


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
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ref", type=Path, default=None, help="root of an LTH14/mar checkout (omit: zoo alone)")
    ap.add_argument("--full", action="store_true", help="MAR-B at its real size (very slow on CPU)")
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--iters", type=int, default=64, help="AR iterations (README FID setting: 256)")
    ap.add_argument("--diffusion-steps", default="100")
    ap.add_argument("--cfg", type=float, default=2.9)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    add_results_option(ap)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    if args.full:
        cfg_kw = {"num_sampling_steps": args.diffusion_steps}
    else:
        w, dp = args.width, args.depth
        cfg_kw = dict(encoder_embed_dim=w, encoder_depth=dp, encoder_num_heads=w // 64, decoder_embed_dim=w, decoder_depth=dp,
                      decoder_num_heads=w // 64, diffloss_d=3, diffloss_w=w, num_sampling_steps=args.diffusion_steps)
    run = start("mar", title="MAR generation (masked AR + MLP diffusion head; latents)", kind="generator", threads=args.threads,
                settings={k: str(v) for k, v in vars(args).items()}, reference=str(args.ref) if args.ref else None, results=args.results)
    cfg, zm, rm = build(args.ref, cfg_kw)
    import numpy as np

    peak = matmul_peak()
    from zoo.sampling.ddpm import space_timesteps

    steps_n = len(space_timesteps(1000, args.diffusion_steps))
    rows = []
    for b in args.batches:
        labels = [(207 + 100 * i) % 1000 for i in range(b)]
        seed = 0

        def zoo_fn(labels=labels, seed=seed):
            return zm.generate(labels, steps=args.iters, guidance_scale=args.cfg, seed=seed, orders="numpy", return_latents=True)

        def ref_fn(labels=labels, seed=seed):
            torch.manual_seed(seed)
            np.random.seed(seed)
            return rm.sample_tokens(bsz=len(labels), num_iter=args.iters, cfg=args.cfg, cfg_schedule="linear",
                                    labels=torch.tensor(labels), temperature=1.0)

        reps = args.reps if b == 1 else max(1, args.reps - 1)
        zc, zw, rc, rw = [], [], [], []
        out = rout = None
        for _ in range(reps):
            if rm is not None:
                c, w, rout = timed(ref_fn)
                rc.append(c), rw.append(w)
            c, w, out = timed(zoo_fn)
            zc.append(c), zw.append(w)
        med = statistics.median
        tr, hd = gflop(cfg, b, args.iters, steps_n)
        size = "MAR-B (768 x 12 + 12, head 6 x 1024)" if args.full else f"shrunk MAR ({cfg.encoder_embed_dim} x {cfg.encoder_depth} + {cfg.decoder_depth}, head 3 x {cfg.diffloss_w})"
        row = {"batch": b, "model": f"{size}, 16x16 latents, {args.iters} AR iters, {steps_n} diffusion steps, cfg {args.cfg} linear",
               "zoo_images_per_s": b / med(zc), "ref_images_per_s": b / med(rc) if rc else None,
               "speedup_cpu": med(rc) / med(zc) if rc else None, "speedup_wall": med(rw) / med(zw) if rw else None,
               "zoo_cpu_s": med(zc), "ref_cpu_s": med(rc) if rc else None, "transformer_gflop": tr, "head_gflop": hd,
               "gflops_achieved": (tr + hd) / med(zc), "matmul_peak_gflops": peak, "pct_of_peak": 100 * (tr + hd) / med(zc) / peak}
        if rout is not None:
            z = out.values.transpose(1, 2).reshape(rout.shape)
            row["latents_max_abs_diff"] = float((z - rout).abs().max())
            row["latents_max_abs_ref"] = float(rout.abs().max())
        rows.append(row)
        print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
    run.write(rows, notes=["images/s from CPU seconds (time.process_time), 1 thread, medians of interleaved runs; latents only (no VAE)",
                           "shrunk transformer unless --full (MAR-B at the README's 256 x 100-step settings: ~51 TFLOP, ~15 CPU-minutes per image here)",
                           "% of peak: transformer + head matmul GFLOP / zoo CPU seconds over a 2048^3 fp32 GEMM measured in the same run",
                           "seed: zoo seed=s, orders='numpy' == reference after torch.manual_seed(s); np.random.seed(s)"])


if __name__ == "__main__":
    main()
