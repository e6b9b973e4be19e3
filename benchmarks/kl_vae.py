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

from _conv_bench import CodecBench, codec_parser, random_images, run_codec_benchmark

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
    card, size = FAMILIES[args.family][2], args.size
    notes = [f"{size}x{size} fp32, median of {args.repeats}, interleaved",
             "speedup = reference CPU seconds / zoo CPU seconds; decode runs the reference's latents in both",
             "peak MiB = a fresh child's peak RSS during encode + decode minus its RSS after building the model"
             " (MALLOC_MMAP_THRESHOLD_=131072: freed blocks leave RSS, so it tracks live tensors)"]
    return run_codec_benchmark(
        args, script=__file__, build=lambda with_ref, with_zoo: _build(args, with_ref, with_zoo), impls=_impls,
        inputs=lambda b: random_images(b, size),
        bench=lambda ours, ref: CodecBench(
            name=args.family, title=f"{card} encode/decode", header=f"{card}, {size}x{size}", model=card,
            child_args=["--family", args.family, "--size", str(size)], notes=notes))


if __name__ == "__main__":
    raise SystemExit(main())
