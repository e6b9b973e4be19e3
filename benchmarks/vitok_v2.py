"""ViTok-v2 speed and memory: zoo vs Na-VAE/vitok-release's ``AE`` on the same weights, one run.

Both sides get the same deterministic per-key random weights in the release's layout (zoo through
its builder's key rename). Encode = images -> latents (the reference's ``patchify`` preprocessing
included, as its ``preprocess`` does it), decode = the reference's latents -> images (the
reference's ``unpatchify`` + ``unpack`` included). Reference and zoo are interleaved, single-threaded,
CPU seconds (median of ``--repeats`` after a warm-up); peak memory per implementation from a fresh
child process each (``_conv_bench``). The reference runs its SDPA backend (flash-attn needs CUDA).

Usage::

    python benchmarks/vitok_v2.py --ref /tmp/ref/vitok-release [--variant Ld4-Ld24/1x16x64] [--batches 1] [--merge]

Without ``--ref`` only zoo is timed (the reference columns stay empty). ``--merge`` keeps the
committed record's rows of other batch sizes (long runs are split over several invocations).
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

from _conv_bench import CodecBench, codec_parser, random_images, run_codec_benchmark

CARD = "vitok_v2.350m_f16x64"


def _reference(path: str | None):
    if not path:
        return None, None
    root = Path(path)
    try:
        from zoo.compat.torchvision import ensure_torchvision

        ensure_torchvision()
        for name, sub in (("vitok", "vitok"), ("vitok.pp", "vitok/pp")):  # skip the package __init__s (webdataset)
            pkg = types.ModuleType(name)
            pkg.__path__ = [str(root / sub)]
            sys.modules[name] = pkg
        sys.path.insert(0, str(root))
        import vitok.models.ae as ae
        import vitok.pp.ops as ops
    except ImportError as exc:
        print(f"[reference skipped: vitok not importable from {path}: {exc}]")
        return None, None
    return ae, ops


def _build(args, with_ref: bool, with_zoo: bool = True):
    from zoo_plugins.vitok.builder import from_reference, to_reference

    import zoo
    from zoo.testing.weights import seeded_state_dict, state_manifest

    ae, ops = _reference(args.ref) if with_ref else (None, None)
    ref = None
    if ae is not None:
        ref = ae.AE(**ae.decode_variant(args.variant), attn_backend="sdpa").eval()
        state = seeded_state_dict(state_manifest(ref), seed=0)
        ref.load_state_dict(state, strict=True)
        ref.ops = ops
        if not with_zoo:
            return None, ref
    ours = zoo.load(CARD, pretrained=False, variant=args.variant)
    if ref is None:
        state = seeded_state_dict(to_reference(state_manifest(ours)), seed=0)
    ours.load_state_dict(from_reference(state), strict=True)
    return ours.eval(), ref


def _impls(ours, ref, patch: int):
    import torch

    out = {"zoo": (lambda im: ours.encode(im), lambda z: ours.decode(z, clamp=False))}
    if ref is not None:
        ops = ref.ops

        def ref_encode(images):
            n = (images.shape[-2] // patch) * (images.shape[-1] // patch)
            dicts = [ops.patchify(patch, n)(im) for im in images]
            batch = {k: torch.stack([d[k] for d in dicts]) for k in dicts[0]}
            return ref.encode(batch)

        def ref_decode(enc):
            dec = ref.decode(enc)
            return torch.stack(ops.unpack(ops.unpatchify(dec, patch=patch), dec["orig_height"], dec["orig_width"]))

        out["reference"] = (ref_encode, ref_decode)
    return out


def _decode_input(impl, encoded):
    """Both decoders get the reference's latents (zoo's own when the reference is not built)."""
    from zoo.interfaces import Latents

    if "reference" not in encoded:
        return encoded["zoo"]
    if impl == "reference":
        return encoded["reference"]
    return Latents(values=encoded["reference"]["z"], tokenizer=encoded["zoo"].tokenizer, meta=encoded["zoo"].meta)


def main(argv: list[str] | None = None) -> int:
    ap = codec_parser(__doc__.splitlines()[0], "root of the vitok-release checkout")
    ap.add_argument("--variant", default="Ld4-Ld24/1x16x64", help="the 350M release's variant by default")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--merge", action="store_true", help="keep the committed record's rows of other batch sizes")
    args = ap.parse_args(argv)
    size, patch = args.size, _patch(args.variant)
    notes = [f"{size}x{size} fp32, median of {args.repeats}, interleaved; variant {args.variant}",
             "speedup = reference CPU seconds / zoo CPU seconds; decode runs the reference's latents in both; "
             "the reference's patchify / unpatchify are timed with it",
             "peak MiB = a fresh child's peak RSS during encode + decode minus its RSS after building the model"]
    return run_codec_benchmark(
        args, script=__file__, build=lambda with_ref, with_zoo: _build(args, with_ref, with_zoo),
        impls=lambda ours, ref: _impls(ours, ref, patch), inputs=lambda b: random_images(b, size),
        bench=lambda ours, ref: CodecBench(
            name="vitok_v2", title=f"ViTok-v2 ({args.variant}) encode/decode",
            header=f"ViTok-v2 {args.variant}, {size}x{size}", model=CARD,
            child_args=["--variant", args.variant, "--size", str(size)], notes=notes, decode_input=_decode_input,
            compared=lambda impl, stage, out: out["z"] if isinstance(out, dict) else out,
            merge_key=lambda row: row.get("batch")))



def _patch(variant: str) -> int:
    from zoo_plugins.vitok.config import parse_variant

    return parse_variant(variant).patch


if __name__ == "__main__":
    raise SystemExit(main())
