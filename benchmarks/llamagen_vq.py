"""LlamaGen VQ speed and memory: zoo vs FoundationVision/LlamaGen's VQModel, same weights, one run.

Builds ``VQ_16`` (``llamagen_vq.ds16_c2i``; ``--model ds8`` for ``VQ_8``) with deterministic per-key
random weights in the reference layout, loads them into both (zoo through its builder's layout
conversion), and times encode (images -> ids) and decode (the reference's ids -> images) at
256x256, batch 1 and 8, interleaved, single-threaded, in CPU seconds (median of ``--repeats``).
Peak memory per implementation comes from a fresh child process each (see ``_conv_bench``).
Prints images/s, the speed-up (reference seconds / zoo seconds), ids agreement and max |diff|.

Usage::

    python benchmarks/llamagen_vq.py --ref /tmp/ref/LlamaGen [--batches 1,8] [--repeats 3]

Without ``--ref`` only zoo is timed (the reference columns stay empty).
"""

from __future__ import annotations

import sys

from _conv_bench import CodecBench, codec_parser, random_images, run_codec_benchmark

CONFIGS = {"ds16": ("VQ_16", "llamagen_vq.ds16_c2i"), "ds8": ("VQ_8", "llamagen_vq.ds8_c2i")}


def _reference(path: str | None, model: str):
    if not path:
        return None
    sys.path.insert(0, path)
    try:
        from tokenizer.tokenizer_image import vq_model
    except ImportError as exc:
        print(f"[reference skipped: LlamaGen not importable from {path}: {exc}]")
        return None
    return getattr(vq_model, CONFIGS[model][0])


def _build(args, with_ref: bool, with_zoo: bool = True):
    import torch
    from zoo_plugins.llamagen_vq.builder import LlamaGenVQBuilder

    import zoo
    from zoo.testing.weights import seeded_state_dict, state_manifest

    ctor = _reference(args.ref, args.model) if with_ref else None
    ref = None
    if ctor is not None:
        ref = ctor().eval()
        state = seeded_state_dict(state_manifest(ref), seed=0)
        ref.load_state_dict(state, strict=True)
        if not with_zoo:
            return None, ref
    ours = zoo.load(CONFIGS[args.model][1], pretrained=False)
    if ref is None:
        from zoo_plugins.llamagen_vq.builder import to_reference

        state = seeded_state_dict(to_reference(state_manifest(ours), ours.config), seed=0)
        state["quantize.codebook_used"] = torch.zeros(65536)
    ours.load_state_dict(LlamaGenVQBuilder().convert(state, ours.config), strict=True)
    return ours.eval(), ref


def _impls(ours, ref, grid):
    out = {"zoo": (lambda im: ours.encode(im).ids, lambda ids: ours.decode(ids, grid=grid, clamp=False))}
    if ref is not None:
        def ref_encode(im):
            _, _, (_, _, ids) = ref.encode(im)
            return ids.view(im.shape[0], -1)

        def ref_decode(ids):
            return ref.decode_code(ids.reshape(-1), shape=(ids.shape[0], ref.config.codebook_embed_dim, *grid))

        out["reference"] = (ref_encode, ref_decode)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = codec_parser(__doc__.splitlines()[0], "root of a FoundationVision/LlamaGen checkout")
    ap.add_argument("--model", default="ds16", choices=sorted(CONFIGS))
    ap.add_argument("--size", type=int, default=256)
    args = ap.parse_args(argv)
    f = 16 if args.model == "ds16" else 8
    grid, size = (args.size // f, args.size // f), args.size
    notes = [f"{size}x{size} fp32, median of {args.repeats}, interleaved",
             "speedup = reference CPU seconds / zoo CPU seconds; decode runs the reference's ids in both",
             "peak MiB = a fresh child's peak RSS during encode + decode minus its RSS after building the model"
             " (MALLOC_MMAP_THRESHOLD_=131072: freed blocks leave RSS, so it tracks live tensors)"]
    return run_codec_benchmark(
        args, script=__file__, build=lambda with_ref, with_zoo: _build(args, with_ref, with_zoo),
        impls=lambda ours, ref: _impls(ours, ref, grid), inputs=lambda b: random_images(b, size),
        bench=lambda ours, ref: CodecBench(
            name="llamagen_vq", title=f"LlamaGen VQ ({CONFIGS[args.model][1]}) encode/decode",
            header=f"LlamaGen {CONFIGS[args.model][0]}, {size}x{size}", model=CONFIGS[args.model][1],
            child_args=["--model", args.model, "--size", str(size)], notes=notes))


if __name__ == "__main__":
    raise SystemExit(main())
