"""LightningDiT generation speed: zoo vs hustvl/LightningDiT on the same weights, labels and noise,
in one run (interleaved repetitions, medians of CPU seconds; the machine is shared).

The sampler is the reference's default (reproduction config of the 800-epoch model: Euler ODE on
``linspace(0, 1, 250)`` shifted by 0.3, cfg 6.7 on the first 3 channels for ``t >= 0.125``), at
16x16x32 latents. LightningDiT-XL/1 costs ~0.47 TFLOP per guided step (about 10 CPU-seconds at the
~50 GFLOP/s measured here), ~99 TFLOP and ~35 CPU-minutes for one image at 249 steps (168 guided),
so the default run SHRINKS the transformer
(``--width``/``--depth``, default 256 x 2, 4 heads) and keeps everything else; ``--full`` builds
the XL size. Both sides run CFG as 2B rows; zoo runs only the B conditional rows outside the
guidance interval (the reference runs 2B and discards half) and computes the class embeddings
once. The reference runs with ``TORCHDYNAMO_DISABLE=1`` (its ``@torch.compile`` decorators off on
CPU). Latents are compared; the VA-VAE decode is the kl_vae benchmark's.

Usage:
    flock /tmp/zoo_heavy.lock python -P benchmarks/lightningdit.py --ref /tmp/ref/LightningDiT [--batches 1 8] [--reps 2]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parent))  # _generator, _record, also under `python -P`
os.environ.setdefault("TORCHDYNAMO_DISABLE", "1")  # before torch: the reference's @torch.compile stays eager

import torch  # noqa: E402
from _generator import begin, matmul_peak, parser, run_batches  # noqa: E402

XL_FLAGS = dict(use_qknorm=False, use_swiglu=True, use_rope=True, use_rmsnorm=True, wo_shift=False)
NOTES = ["images/s from CPU seconds (time.process_time), 1 thread, medians of interleaved runs; latents only (no VAE)",
         "shrunk transformer unless --full (XL/1: ~99 TFLOP per image at 249 steps, ~35 CPU-minutes here)",
         "% of peak: zoo's matmul GFLOP / zoo CPU seconds over a 2048^3 fp32 GEMM measured in the same run",
         "seed: zoo seed=s == reference torch.randn after torch.manual_seed(s)"]


def step_gflop(d: int, depth: int, tokens: int, rows: int) -> float:
    """Matmul GFLOP of one velocity evaluation: qkv/proj (4d^2), SwiGLU (3 x d x 2/3 4d = 8d^2), attention."""
    hidden = int(2 / 3 * 4 * d)
    per_layer = 2 * tokens * (4 * d * d + 3 * d * hidden) + 4 * tokens * tokens * d
    return rows * depth * per_layer / 1e9


def build(ref: Path | None, cfg_kw: dict):
    from zoo_plugins.lightningdit.config import LightningDiTConfig
    from zoo_plugins.lightningdit.model import LightningDiT

    from zoo.testing.weights import seeded_state_dict, state_manifest

    cfg = LightningDiTConfig(**cfg_kw)
    zm = LightningDiT(cfg).eval()
    sd = seeded_state_dict(state_manifest(zm))
    zm.load_state_dict(sd, strict=True)
    if ref is None:
        return cfg, zm, None, None
    from zoo.compat.torchvision import ensure_torchvision

    ensure_torchvision()
    sys.path.insert(0, str(ref))
    from models.lightningdit import LightningDiT as RefDiT  # noqa: PLC0415 - the reference
    from transport import Sampler, create_transport  # noqa: PLC0415

    rm = RefDiT(input_size=cfg.input_size, patch_size=cfg.patch_size, in_channels=cfg.in_channels, hidden_size=cfg.hidden_size,
                depth=cfg.depth, num_heads=cfg.num_heads, num_classes=cfg.num_classes, **XL_FLAGS).eval()
    rm.load_state_dict(sd, strict=True)
    sampler = Sampler(create_transport("Linear", "velocity", None, None, None, use_cosine_loss=True, use_lognorm=True))
    sample_fn = sampler.sample_ode(sampling_method="euler", num_steps=cfg.num_sampling_steps, atol=1e-6, rtol=1e-3, reverse=False,
                                   timestep_shift=cfg.timestep_shift)
    return cfg, zm, rm, sample_fn


def main() -> None:
    ap = parser(__doc__, "root of a hustvl/LightningDiT checkout (omit: zoo alone)")
    ap.add_argument("--full", action="store_true", help="LightningDiT-XL/1 at its real size (hours on CPU)")
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--depth", type=int, default=2)
    ap.add_argument("--steps", type=int, default=250, help="grid points (reference default 250 = 249 Euler steps)")
    args = ap.parse_args()
    cfg_kw = {"num_sampling_steps": args.steps}
    if not args.full:
        cfg_kw.update(hidden_size=args.width, depth=args.depth, num_heads=args.width // 64)
    run = begin("lightningdit", "LightningDiT generation (rectified-flow DiT; latents)", args)
    cfg, zm, rm, sample_fn = build(args.ref, cfg_kw)
    from zoo_plugins.lightningdit.model import reference_time_grid

    times = reference_time_grid(cfg.num_sampling_steps, cfg.timestep_shift)
    guided_steps = sum(1 for t in times[:-1] if t >= cfg.cfg_interval_start)
    n_steps = len(times) - 1
    tokens = (cfg.input_size // cfg.patch_size) ** 2
    peak = matmul_peak()

    def calls(b: int, labels: list[int]):
        def ref_fn():
            torch.manual_seed(0)
            z = torch.randn(b, cfg.in_channels, cfg.input_size, cfg.input_size)
            z = torch.cat([z, z], 0)
            y = torch.cat([torch.tensor(labels), torch.tensor([cfg.num_classes] * b)], 0)
            out = sample_fn(z, rm.forward_with_cfg, y=y, cfg_scale=cfg.cfg_scale, cfg_interval=True,
                            cfg_interval_start=cfg.cfg_interval_start)[-1]
            return out.chunk(2, dim=0)[0]

        return ref_fn, lambda: zm.generate(labels, seed=0, return_latents=True)

    def fields(b: int, zt, ra, za) -> dict:
        zoo_gf = step_gflop(cfg.hidden_size, cfg.depth, tokens, 2 * b) * guided_steps + \
            step_gflop(cfg.hidden_size, cfg.depth, tokens, b) * (n_steps - guided_steps)
        size = "LightningDiT-XL/1" if args.full else f"shrunk LightningDiT ({cfg.hidden_size} x {cfg.depth}, {cfg.num_heads} heads)"
        return {"model": f"{size}, 16x16x32 latents, {n_steps} Euler steps (shift {cfg.timestep_shift}), cfg {cfg.cfg_scale} "
                         f"on 3 channels for t >= {cfg.cfg_interval_start} ({guided_steps} guided steps)",
                "zoo_gflop": zoo_gf, "ref_gflop": step_gflop(cfg.hidden_size, cfg.depth, tokens, 2 * b) * n_steps,
                "gflops_achieved": zoo_gf / zt[0], "matmul_peak_gflops": peak, "pct_of_peak": 100 * zoo_gf / zt[0] / peak}

    run_batches(run, args, calls, fields, NOTES, reps=lambda b: args.reps if b == 1 else max(1, args.reps - 1), warm=False)


if __name__ == "__main__":
    main()
