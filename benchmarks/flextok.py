# ruff: noqa: B023  (timing closures are called inside the iteration that defines them)
"""FlexTok: reference (apple/ml-flextok) vs zoo, same weights and inputs, one run.

    PYTHONPATH=.:/tmp/pylib_flextok python benchmarks/flextok.py --ref /tmp/ref/flextok \
        --size d12_d12 --batch 1 8 --steps 20

Prints encode and decode images/s at each batch size (decode: ``--steps`` Euler steps with
CFG ``--cfg`` and norm guidance, the reference README's defaults) and zoo/reference ratios,
after checking that both produce the same ids and the same decoded latents. ``--fit`` measures
decode at two step counts and extrapolates to ``--steps`` (decode time is affine in the step
count: VAE decode + per-step cost), which keeps a CPU run short; the table says when it did.
``--profile`` prints where the reference spends a decode. Without ``--ref`` only zoo runs.
Weights are random (seeded per key) in the official layout at the reconstructed published size.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path

import torch

CLOCK = time.process_time  # CPU seconds: on a shared machine wall time measures the neighbours


def timed(fn):
    """(result, seconds of CLOCK) of one call."""
    t0 = CLOCK()
    out = fn()
    return out, CLOCK() - t0


def build_zoo(size: str, seed: int):
    from zoo_plugins.flextok.model import FlexTok
    from zoo_plugins.flextok.testing import published_config

    from zoo.testing.weights import seeded_state_dict, state_manifest
    from zoo.weights import no_init

    cfg = published_config(size)
    cfg.vae.scaling_factor = 0.9
    with no_init():
        model = FlexTok(cfg)
    sd = seeded_state_dict(state_manifest(model), seed=seed)
    model.load_state_dict(sd, strict=True)
    return model.eval(), cfg, sd


def build_reference(ref: Path, cfg, sd):
    sys.path.insert(0, str(ref))
    from zoo.compat.torchvision import ensure_torchvision

    ensure_torchvision()
    from hydra.utils import instantiate
    from zoo_plugins.flextok.export import to_metadata

    model = instantiate(to_metadata(cfg)).eval()
    for m in model.modules():  # the reference's own SDPA fallback (no flex_attention compiler on CPU)
        if hasattr(m, "use_flex_attention"):
            m.use_flex_attention = False
        if hasattr(m, "return_materialized_mask"):
            m.return_materialized_mask, m.compile_block_mask = True, False
    model.load_state_dict(sd, strict=True)
    return model


def ref_decode_latents(ref, token_list, steps, cfg_scale, apg, seed, size):
    g = torch.Generator().manual_seed(seed)
    d = ref._prepare_data_dict_for_detokenization(token_list)
    d = ref.pipeline(d, generator=g, timesteps=steps, vae_image_sizes=size, verbose=False,
                     guidance_scale=cfg_scale, perform_norm_guidance=apg)
    return d


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ref", type=Path, default=None)
    ap.add_argument("--size", default="d12_d12")
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--cfg", type=float, default=7.5)
    ap.add_argument("--no-apg", action="store_true")
    ap.add_argument("--image-size", type=int, default=256)
    ap.add_argument("--fit", type=int, nargs=2, default=None, metavar=("S1", "S2"),
                    help="measure decode at S1 and S2 steps and extrapolate to --steps")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--clock", choices=["cpu", "wall"], default="cpu",
                    help="cpu: process CPU seconds (default; fair on a shared machine with --threads 1)")
    args = ap.parse_args()
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    torch.set_num_threads(args.threads)
    apg = not args.no_apg

    model, cfg, sd = build_zoo(args.size, args.seed)
    ref = None
    if args.ref is not None and (args.ref / "flextok").is_dir():
        ref = build_reference(args.ref, cfg, sd)
    elif args.ref is not None:
        print(f"reference not found at {args.ref}: timing zoo only")
    del sd
    lat = args.image_size // 8
    g = torch.Generator().manual_seed(1)
    images = torch.rand(max(args.batch), 3, args.image_size, args.image_size, generator=g) * 2 - 1

    rows = []
    with torch.inference_mode():
        for b in args.batch:
            x = images[:b]
            # -- encode
            tokens, tz = timed(lambda: model.encode(x))
            ids = tokens.ids
            tr = None
            if ref is not None:
                rids, tr = timed(lambda: torch.cat(ref.tokenize(x)))
                assert torch.equal(rids, ids), "encode: zoo and reference ids differ"
            rows.append(("encode", b, tz, tr, ""))
            # -- decode (ragged prefixes, as a user would truncate)
            keeps = [max(1, 256 >> (i % 9)) for i in range(b)]
            toks = [ids[i : i + 1, :k] for i, k in enumerate(keeps)]

            def zoo_lat(steps):
                return model.decode_latents(toks, steps=steps, guidance_scale=args.cfg, norm_guidance=apg,
                                            generator=torch.Generator().manual_seed(args.seed), latent_size=lat)

            def ref_lat(steps):
                d = ref_decode_latents(ref, toks, steps, args.cfg, apg, args.seed, lat)
                return d, torch.cat(d["vae_latents_reconst"])

            # decode = Euler steps (latents) + one VAE decode; both timed, outputs compared.
            counts = list(args.fit) if args.fit else [args.steps]
            zl = [timed(lambda s=s: zoo_lat(s)) for s in counts]
            zimg, tz_vae = timed(lambda: model.vae.decode(zl[-1][0]))
            if ref is not None:
                rl = [timed(lambda s=s: ref_lat(s)) for s in counts]
                rimg, tr_vae = timed(lambda: torch.cat(ref.vae.decode(rl[-1][0][0])[ref.image_write_key]))
                for (z, _), ((_, r), _) in zip(zl, rl):
                    err = float((z - r).abs().max())
                    assert err < 1e-3, f"decode: zoo and reference latents differ by {err}"
                img_err = float((zimg - rimg).abs().max())
                print(f"batch {b}: decoded latents max|diff| {err:.2e}, images max|diff| {img_err:.2e}")

            def total(times, t_vae):
                if len(times) == 1:
                    return times[0] + t_vae
                (s1, s2), (t1, t2) = counts, times
                return t1 + (t2 - t1) / (s2 - s1) * (args.steps - s1) + t_vae

            tzd = total([t for _, t in zl], tz_vae)
            trd = total([t for _, t in rl], tr_vae) if ref is not None else None
            note = f"steps fit from {counts[0]},{counts[1]}" if args.fit else ""
            rows.append(("decode", b, tzd, trd, note))

        if args.profile and ref is not None:
            toks = [ids[i : i + 1] for i in range(min(2, ids.shape[0]))]
            pr = cProfile.Profile()
            pr.enable()
            d = ref_decode_latents(ref, toks, 2, args.cfg, apg, args.seed, lat)
            ref.vae.decode(d)
            pr.disable()
            s = io.StringIO()
            pstats.Stats(pr, stream=s).sort_stats("cumulative").print_stats(25)
            print(s.getvalue())

    print(f"\nFlexTok {args.size}, {args.image_size}px, decode {args.steps} steps, CFG {args.cfg}"
          f"{' + APG' if apg else ''}, {args.threads} thread(s), {args.clock} clock, torch {torch.__version__}")
    print("decode tokens per image: 256, 128, 64, ... (ragged prefixes); ids and decoded latents checked equal")
    print(f"{'op':8} {'batch':>5} {'zoo img/s':>10} {'ref img/s':>10} {'ratio':>6}  note")
    for op, b, tz, tr, note in rows:
        zi = b / tz
        ri = b / tr if tr else float("nan")
        ratio = f"{tr / tz:6.2f}" if tr else "   n/a"
        print(f"{op:8} {b:5d} {zi:10.4f} {ri:10.4f} {ratio}  {note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
