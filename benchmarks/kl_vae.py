"""VA-VAE / MAR KL-16 speed and memory: zoo vs the reference LDM AutoencoderKL, same weights, one run.

``--family va_vae`` (default) builds hustvl/LightningDiT's ``AutoencoderKL(embed_dim=32)``
(``va_vae.f16d32``); ``--family mar_vae`` builds LTH14/mar's ``AutoencoderKL(embed_dim=16)``
(``mar_vae.kl16``). Deterministic per-key random weights in the reference layout go into both
(zoo through its builder's layout conversion); encode (images -> posterior mode) and decode (the
reference's latents -> images) are timed at 256x256, batch 1 and 8, interleaved, single-threaded,
in CPU seconds (median of ``--repeats``); peak memory per implementation comes from a fresh child
process each (see ``_conv_bench``).

Usage::

    python benchmarks/kl_vae.py --family va_vae --ref /tmp/ref/LightningDiT [--batches 1,8] [--repeats 3]
    python benchmarks/kl_vae.py --family mar_vae --ref /tmp/ref/mar

Without ``--ref`` only zoo is timed (the reference columns stay empty).
"""

from __future__ import annotations

import sys

from _conv_bench import codec_parser, child_memory, measure_child, time_impls
from _record import start

FAMILIES = {"va_vae": ("tokenizer.autoencoder", 32, "va_vae.f16d32"), "mar_vae": ("models.vae", 16, "mar_vae.kl16")}


def _reference(path: str | None, family: str):
    if not path:
        return None
    sys.path.insert(0, path)
    try:
        from zoo.compat.torchvision import ensure_torchvision

        ensure_torchvision()  # LightningDiT's autoencoder.py imports torchvision.transforms
        import importlib

        module = importlib.import_module(FAMILIES[family][0])
    except ImportError as exc:
        print(f"[reference skipped: {FAMILIES[family][0]} not importable from {path}: {exc}]")
        return None
    return module.AutoencoderKL


def _build(args, with_ref: bool, with_zoo: bool = True):
    from zoo_plugins.kl_vae.builder import MarVAEBuilder, VAVAEBuilder, to_reference

    import zoo
    from zoo.testing.weights import seeded_state_dict, state_manifest

    _, embed, card = FAMILIES[args.family]
    ctor = _reference(args.ref, args.family) if with_ref else None
    ref = None
    if ctor is not None:
        ref = ctor(embed_dim=embed, ch_mult=(1, 1, 2, 2, 4)).eval()
        state = seeded_state_dict(state_manifest(ref), seed=0)
        ref.load_state_dict(state, strict=True)
        if not with_zoo:
            return None, ref
    ours = zoo.load(card, pretrained=False)
    if ref is None:
        state = seeded_state_dict(to_reference({k: v for k, v in state_manifest(ours).items() if k.startswith("vae.")},
                                               ours.config), seed=0)
    builder = VAVAEBuilder() if args.family == "va_vae" else MarVAEBuilder()
    sd = dict(builder.convert(state, ours.config))
    if ours.config.latent_stats:
        sd["latent_mean"], sd["latent_std"] = ours.latent_mean.clone(), ours.latent_std.clone()
    ours.load_state_dict(sd, strict=True)
    return ours.eval(), ref


def _impls(ours, ref):
    out = {"zoo": (lambda im: ours.encode_latents(im), lambda z: ours.decode(z, clamp=False))}
    if ref is not None:
        out["reference"] = (lambda im: ref.encode(im).mode(), lambda z: ref.decode(z))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = codec_parser(__doc__.splitlines()[0], "root of the reference checkout")
    ap.add_argument("--family", default="va_vae", choices=sorted(FAMILIES))
    ap.add_argument("--size", type=int, default=256)
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)

    def inputs(b: int) -> torch.Tensor:
        return torch.rand(b, 3, args.size, args.size, generator=torch.Generator().manual_seed(0)) * 2 - 1

    if args.memory_child:
        ours, ref = _build(args, with_ref=args.memory_child == "reference", with_zoo=args.memory_child == "zoo")
        enc, dec = _impls(ours, ref)[args.memory_child]
        measure_child(enc, dec, inputs(args.batch))
        return 0

    ours, ref = _build(args, with_ref=True)
    impls = _impls(ours, ref)
    card = FAMILIES[args.family][2]
    run = start(args.family, title=f"{card} encode/decode", kind="tokenizer", threads=args.threads,
                settings=vars(args), reference=args.ref if ref is not None else None, results=args.results)
    base = "reference" if ref is not None else "zoo"
    rows = []
    print(f"{card}, {args.size}x{args.size}, fp32, {args.threads} thread(s), torch {torch.__version__}, "
          f"median of {args.repeats} (CPU seconds)")
    print(f"{'stage':7} {'batch':>5} {'impl':10} {'cpu-s':>8} {'wall-s':>8} {'img/s':>7} {'speed-up':>8} "
          f"{'peak MiB':>9} {'max|diff|':>10}")
    for b in (int(v) for v in args.batches.split(",")):
        cpu, wall, outs = time_impls(impls, inputs(b), args.repeats, lambda n, enc: enc[base])
        extra = ["--family", args.family, "--size", str(args.size)] + (["--ref", args.ref] if args.ref else [])
        mem = {n: None if args.no_memory else child_memory(__file__, n, b, extra) for n in impls}
        for stage in ("encode", "decode"):
            for n in impls:
                t, rt = cpu[(n, stage)], cpu.get(("reference", stage))
                diff = float((outs[(n, stage)] - outs[("reference", stage)]).abs().max()) if ref is not None else None
                m = mem.get(n)
                print(f"{stage:7} {b:5d} {n:10} {t:8.2f} {wall[(n, stage)]:8.2f} {b / t:7.3f} "
                      f"{(f'{rt / t:7.2f}x' if rt else '       -')} {(f'{m:9.0f}' if m is not None else '        -')} "
                      f"{(f'{diff:10.2e}' if diff is not None else '         -')}")
                if n == "zoo":
                    rows.append({"model": card, "op": stage, "batch": b, "unit": "img/s", "zoo_s": t, "ref_s": rt,
                                 "zoo_per_s": b / t, "ref_per_s": b / rt if rt else None,
                                 "speedup": rt / t if rt else None, "zoo_wall_s": wall[(n, stage)],
                                 "zoo_peak_mib": mem.get("zoo"), "ref_peak_mib": mem.get("reference"),
                                 "max_abs_diff_vs_ref": diff,
                                 "check": f"max|diff| {diff:.1e}" if diff is not None else None})
    run.write(rows, notes=[f"{args.size}x{args.size} fp32, median of {args.repeats}, interleaved",
                           "speedup = reference CPU seconds / zoo CPU seconds; decode runs the reference's latents in both",
                           "peak MiB = a fresh child's peak RSS during encode + decode minus its RSS after building the model "
                           "(MALLOC_MMAP_THRESHOLD_=131072: freed blocks leave RSS, so it tracks live tensors)"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
