"""FlexTok VAE speed: zoo's AutoencoderKL vs diffusers' (the reference), same weights, one run.

Builds the published ``flextok_vae_c16`` architecture with deterministic per-key random
weights, then times encode (posterior mean) and decode, alternating reference and zoo runs
after a warm-up (rows: diffusers, zoo's default path, and zoo with the opt-in Winograd
convolutions), and prints the median images/s of each, their ratio, and the largest
difference between the two outputs (so a speed-up that changes results shows). Speed is
measured in CPU seconds of this process (``time.process_time``): on a shared machine wall
time mostly measures the neighbours; the median wall time is printed beside it.

Usage::

    pip install --no-deps --target /tmp/pylib_vae diffusers     # the reference, outside zoo
    python benchmarks/flextok_vae.py --ref /tmp/pylib_vae [--size 256] [--batch 1] [--repeats 3]

Without ``--ref`` (or when diffusers cannot be imported from it) only zoo is timed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from _record import add_results_option, start


def _load_reference(path: str | None):
    if not path:
        return None
    sys.path.insert(0, path)
    try:
        from zoo.compat.torchvision import ensure_torchvision

        ensure_torchvision()
        from diffusers.models import AutoencoderKL
    except ImportError as exc:
        print(f"[reference skipped: diffusers not importable from {path}: {exc}]")
        return None
    return AutoencoderKL


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ref", default=None, help="site dir holding diffusers (pip --target); omit to time zoo only")
    ap.add_argument("--size", type=int, default=256, help="image side (multiple of 8)")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--latent-channels", type=int, default=16, choices=(4, 8, 16))
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per implementation (median reported)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the machine is shared: default 1)")
    ap.add_argument("--no-winograd", action="store_true", help="skip the zoo+winograd row (opt-in mode, +~0.4 GB)")
    add_results_option(ap)
    args = ap.parse_args(argv)

    import torch
    from zoo_plugins.flextok.vae import AutoencoderKL, flextok_vae_config

    from zoo.testing.weights import seeded_state_dict, state_manifest

    torch.set_num_threads(args.threads)
    cfg = flextok_vae_config(args.latent_channels)
    ours = AutoencoderKL.from_config(cfg).eval()
    sd = seeded_state_dict(state_manifest(ours), seed=0)
    ours.load_state_dict(sd, strict=True)
    ref_cls = _load_reference(args.ref)
    ref = None
    if ref_cls is not None:
        ref = ref_cls.from_config(cfg).eval()
        ref.load_state_dict(sd, strict=True)

    run = start("flextok_vae", title=f"FlexTok VAE c{args.latent_channels} encode/decode", kind="tokenizer",
                threads=args.threads, settings=vars(args), reference=args.ref if ref is not None else None,
                results=args.results)
    x = torch.rand(args.batch, 3, args.size, args.size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    impls = {"zoo": (lambda im: ours.encode(im), lambda z: ours.decode(z))}
    if not args.no_winograd:
        wino = AutoencoderKL.from_config(cfg).eval()
        wino.load_state_dict(sd, strict=True)
        wino.set_winograd(True)
        impls["zoo+wino"] = (lambda im: wino.encode(im), lambda z: wino.decode(z))
    if ref is not None:
        impls["diffusers"] = (lambda im: ref.encode(im).latent_dist.mode(), lambda z: ref.decode(z).sample)

    times: dict[tuple[str, str], list[float]] = {(n, s): [] for n in impls for s in ("encode", "decode")}
    walls: dict[tuple[str, str], list[float]] = {k: [] for k in times}
    outs: dict[tuple[str, str], torch.Tensor] = {}
    with torch.inference_mode():
        z_ref = impls["diffusers" if ref is not None else "zoo"][0](x)  # decode the same latents in both
        for enc, dec in impls.values():  # warm-up (one-time allocations, folded weights)
            enc(x), dec(z_ref)
        for _ in range(args.repeats):
            for n, (enc, dec) in impls.items():
                for stage, fn, inp in (("encode", enc, x), ("decode", dec, z_ref)):
                    w0, t0 = time.perf_counter(), time.process_time()
                    outs[(n, stage)] = fn(inp)
                    times[(n, stage)].append(time.process_time() - t0)
                    walls[(n, stage)].append(time.perf_counter() - w0)

    print(f"FlexTok VAE c{args.latent_channels}, {args.batch}x3x{args.size}x{args.size}, fp32, "
          f"{args.threads} thread(s), torch {torch.__version__}, median of {args.repeats}")
    print(f"{'stage':8} {'impl':10} {'cpu-s':>8} {'wall-s':>8} {'img/s':>8} {'speed-up':>9} {'max|diff|':>10}")
    rows = []
    for stage in ("encode", "decode"):
        base = statistics.median(times[("diffusers", stage)]) if ref is not None else None
        for n in impls:
            t = statistics.median(times[(n, stage)])
            ratio = f"{base / t:8.2f}x" if base else "        -"
            diff = (f"{float((outs[(n, stage)] - outs[('diffusers', stage)]).abs().max()):10.2e}"
                    if ref is not None else "         -")
            wall = statistics.median(walls[(n, stage)])
            print(f"{stage:8} {n:10} {t:8.3f} {wall:8.3f} {args.batch / t:8.3f} {ratio} {diff}")
            if n == "diffusers":
                continue
            rows.append({"model": f"flextok_vae c{args.latent_channels}" + (" winograd" if n == "zoo+wino" else ""),
                         "op": stage, "batch": args.batch, "unit": "img/s", "zoo_s": t, "ref_s": base,
                         "zoo_per_s": args.batch / t, "ref_per_s": args.batch / base if base else None,
                         "speedup": base / t if base else None, "zoo_wall_s": wall,
                         "max_abs_diff_vs_ref": float((outs[(n, stage)] - outs[("diffusers", stage)]).abs().max())
                         if ref is not None else None})
    run.write(rows, notes=[f"{args.batch}x3x{args.size}x{args.size} fp32, median of {args.repeats}",
                           "speedup = diffusers seconds / zoo seconds (CPU time)"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
