"""FlowAR generation speed: zoo vs the reference code (wangqiang9/FlowAR at 21835c0, the official
history) on the same weights, labels and seed, in one run (interleaved, medians of CPU seconds).

Default: FlowAR-S at full size (6+6 blocks of 768, flow head 2 x 1024), the README's settings
(25 steps, cfg 4.3, guidance 0.9), CFG as 2B rows in both; latents only (the MAR KL-16 decode is
the ``mar_vae.kl16`` card's, benchmarked with issue 15). ``--steps-b8`` shrinks the Euler steps
of the batch-8 row in both columns (the card's 25 take ~2 CPU minutes per run there; the row says
which steps it used). Weights are random (per-key seeds, the reference layout); the run reports
the max |latent difference| (same seed -> same noise).

Usage (``-P``: see benchmarks/var.py):
    PYTHONPATH=/tmp/pylib flock /tmp/zoo_heavy.lock python -P benchmarks/flowar.py --ref /tmp/ref/FlowAR [--size small]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parent))  # _generator, _record, also under `python -P`

import torch  # noqa: E402
from _generator import begin, gemm_peak, parser, prepare_reference, run_batches  # noqa: E402

SIZES = {"small": "flowar_small", "large": "flowar_large", "huge": "flowar_huge"}


def flow_gflop(cfg, batch: int, steps_per_scale: int) -> float:
    """Matmul GFLOP of one generation: the AR stacks once per scale, the flow head once per Euler
    step (2B rows where CFG applies: t <= guidance; B rows at t = 1)."""
    d, dw, total, seen = cfg.encoder_embed_dim, cfg.diffloss_w, 0.0, 0
    hidden = int(d * 4 * 2 / 3)
    for s in cfg.scale:
        n = s * s
        seen += n
        rows = 2 * batch
        ar = rows * n * (cfg.encoder_depth + cfg.decoder_depth) * (2 * (4 * d * d + 3 * d * hidden) + 4 * seen * d)
        hid = int(dw * 4 * 2 / 3)
        per_tok = 2 * (4 * dw * dw + 3 * dw * hid + 6 * dw * dw) + 4 * n * dw
        if cfg.cross:
            per_tok += 2 * (2 * dw * dw + 3 * dw * dw) + 4 * n * dw
        head = cfg.diffloss_d * per_tok * n
        total += ar + head * (rows * (steps_per_scale - 1) + batch)
    return total / 1e9


NOTES = ["images/s from CPU seconds (time.process_time), 1 thread, medians of interleaved runs; latents only "
         "(the VAE decode is mar_vae.kl16's)", "% of peak: matmul GFLOP of the run / its CPU seconds over an fp32 "
         "GEMM at [2*8*256, w] x [w, 4w] (w = flow head width) measured in the same run"]


def main() -> None:
    ap = parser(__doc__, "root of the FlowAR code (omit: zoo alone)", steps_b8=0)
    ap.add_argument("--size", choices=sorted(SIZES), default="small")
    args = ap.parse_args()
    run = begin("flowar", "FlowAR generation (scale-wise AR + flow head, latents)", args)
    from zoo_plugins.flowar.builder import from_reference
    from zoo_plugins.flowar.config import FLOWAR_SIZES, FlowARConfig
    from zoo_plugins.flowar.model import FlowAR, flowar_time_grid

    from zoo.testing.weights import seeded_state_dict, state_manifest
    from zoo.weights import no_init

    spec = dict(FLOWAR_SIZES[SIZES[args.size]])
    cfg_w, high = spec["cfg"], spec["guidance"]
    zcfg = FlowARConfig(**spec)
    with no_init():
        z = FlowAR(zcfg).eval()
    r = None
    if args.ref is not None:
        prepare_reference(args.ref)
        from models import flowar as ref  # noqa: PLC0415 - the reference

        r = getattr(ref, SIZES[args.size])(img_size=256, vae_stride=16, patch_size=1, vae_embed_dim=16, buffer_size=0,
                                          diffloss_d=spec["diffloss_d"], diffloss_w=spec["diffloss_w"]).eval()
        sd = seeded_state_dict(state_manifest(r))
        sd.update(dict(r.named_buffers()))
        r.load_state_dict(sd, strict=True)
        z.load_state_dict(from_reference(sd), strict=True)
    else:
        z.load_state_dict(seeded_state_dict(state_manifest(z)), strict=True)
    peak = gemm_peak(2 * 8 * 256, zcfg.diffloss_w, 4 * zcfg.diffloss_w)

    def steps_for(b: int) -> int:
        return spec["num_steps"] if b == 1 or not args.steps_b8 else args.steps_b8

    def calls(b: int, labels: list[int]):
        steps = steps_for(b)

        def ref_fn():
            torch.manual_seed(0)
            return r.sample_tokens(num_steps=steps, guidance=high, cfg=cfg_w, labels=torch.tensor(labels))

        return ref_fn, lambda: z.generate(labels, steps=steps, seed=0, return_latents=True)

    def fields(b: int, zt, ra, za) -> dict:
        steps = steps_for(b)
        gflop = flow_gflop(zcfg, b, len(flowar_time_grid(steps)) - 1)
        return {"model": f"FlowAR-{args.size[0].upper()} ({steps} steps, cfg {cfg_w}, guidance <= {high}), latents",
                "steps": steps, "gflop": gflop, "zoo_gflops_achieved": gflop / zt[0], "matmul_peak_gflops": peak,
                "zoo_pct_of_peak": 100 * gflop / zt[0] / peak}

    run_batches(run, args, calls, fields, NOTES, reps=lambda b: args.reps if b == 1 else 1)


if __name__ == "__main__":
    main()
