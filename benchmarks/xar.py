"""xAR generation speed: zoo vs OliverRensu/xAR on the same weights, labels and seed, in one run
(interleaved, medians of CPU seconds).

Default: xAR-B at full size (8+8 blocks of 768), the README's settings (40 SDE steps per cell,
cfg 2.7), CFG as 2B rows in both; latents only (the MAR KL-16 decode is the ``mar_vae.kl16``
card's). ``--steps-b8`` shrinks the SDE steps of the batch-8 row (the full setting takes ~8 CPU
minutes per run on this machine; the row says which steps it used). Weights are random (per-key
seeds, the reference layout); the run reports the max |latent difference| (same seed -> same
noise).

Usage (``-P``: see benchmarks/var.py):
    PYTHONPATH=/tmp/pylib flock /tmp/zoo_heavy.lock python -P benchmarks/xar.py --ref /tmp/ref/xAR [--size base]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parent))  # _generator, _record, also under `python -P`

import torch  # noqa: E402
from _generator import begin, gemm_peak, parser, prepare_reference, run_batches  # noqa: E402

SIZES = {"base": "xar_base", "large": "xar_large", "huge": "xar_huge"}


def xar_gflop(cfg, batch: int, steps: int, rows_factor: int = 2) -> float:
    """Matmul GFLOP of one generation: per cell, ``steps`` passes of its 64 tokens over the cache
    (2B rows with CFG) plus one clean pass of the previous cell."""
    d, n = cfg.encoder_embed_dim, cfg.cell_tokens
    hidden = int(d * 4 * 2 / 3)
    depth = cfg.encoder_depth + cfg.decoder_depth
    rows = rows_factor * batch
    total = 0.0
    for k in range(cfg.clusters):
        ctx = (k + 1) * n
        per_pass = rows * n * depth * (2 * (4 * d * d + 3 * d * hidden) + 4 * ctx * d)
        total += per_pass * (steps + (1 if k else 0))
    return total / 1e9


NOTES = ["images/s from CPU seconds (time.process_time), 1 thread, medians of interleaved runs; latents only "
         "(the VAE decode is mar_vae.kl16's)", "% of peak: transformer matmul GFLOP / CPU seconds over an fp32 "
         "GEMM at [2*8*64, d] x [d, 4d] measured in the same run"]


def main() -> None:
    ap = parser(__doc__, "root of an OliverRensu/xAR checkout (omit: zoo alone)", reps=1, steps_b8=10)
    ap.add_argument("--size", choices=sorted(SIZES), default="base")
    args = ap.parse_args()
    run = begin("xar", "xAR generation (next-cell AR + flow SDE, latents)", args)
    from zoo_plugins.xar.builder import from_reference
    from zoo_plugins.xar.config import XAR_SIZES, XARConfig
    from zoo_plugins.xar.model import XAR

    from zoo.testing.weights import seeded_state_dict, state_manifest
    from zoo.weights import no_init

    spec = dict(XAR_SIZES[SIZES[args.size]])
    zcfg = XARConfig(**spec)
    with no_init():
        z = XAR(zcfg).eval()
    r = None
    if args.ref is not None:
        prepare_reference(args.ref)
        from models import xar as ref  # noqa: PLC0415 - the reference

        r = getattr(ref, SIZES[args.size])(img_size=256, vae_stride=16, patch_size=1, vae_embed_dim=16).eval()
        sd = seeded_state_dict(state_manifest(r))
        sd.update(dict(r.named_buffers()))
        r.load_state_dict(sd, strict=True)
        z.load_state_dict(from_reference(sd), strict=True)
    else:
        z.load_state_dict(seeded_state_dict(state_manifest(z)), strict=True)
    d = zcfg.encoder_embed_dim
    peak = gemm_peak(2 * 8 * 64, d, 4 * d)

    def steps_for(b: int) -> int:
        return spec["num_steps"] if b == 1 or not args.steps_b8 else args.steps_b8

    def calls(b: int, labels: list[int]):
        steps = steps_for(b)

        def ref_fn():
            torch.manual_seed(0)
            return r.sample_tokens(num_steps=steps, cfg=spec["cfg"], label=torch.tensor(labels))

        return ref_fn, lambda: z.generate(labels, steps=steps, seed=0, return_latents=True)

    def fields(b: int, zt, ra, za) -> dict:
        steps = steps_for(b)
        gflop = xar_gflop(zcfg, b, steps)
        return {"model": f"xAR-{args.size[0].upper()} ({steps} SDE steps per cell, cfg {spec['cfg']}), latents",
                "steps": steps, "gflop": gflop, "zoo_gflops_achieved": gflop / zt[0], "matmul_peak_gflops": peak,
                "zoo_pct_of_peak": 100 * gflop / zt[0] / peak}

    run_batches(run, args, calls, fields, NOTES)


if __name__ == "__main__":
    main()
