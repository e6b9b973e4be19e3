"""MingTok-Vision speed and memory: zoo vs inclusionAI/Ming-UniVision's ``MingTok`` on the same weights, one run.

Both sides get the same deterministic per-key random weights in the release's layout (zoo through
its builder's rename). Encode = images -> normalised latents (``MingTok.forward``'s ``latent``),
decode = the reference's latents -> semantic decoder -> pixel decoder -> clamped images (the
reference's ``semantic_decoder`` + ``forward_pixel_decoder``). Reference and zoo interleaved,
single-threaded, CPU seconds (median of ``--repeats`` after a warm-up); peak memory per
implementation from a fresh child process each (``_conv_bench``). On CPU in float32 the reference
runs its own plain-softmax attention (no flash-attn / xFormers there).

``--depth-div N`` divides the three towers' depths by N (the released widths stay) so batch 8 fits
the shared machine's 5-minute slots; ``--size`` picks the (square) input side.

Usage::

    PYTHONPATH=/tmp/pylib python benchmarks/mingtok.py --ref /tmp/ref/Ming-UniVision [--batches 1] [--depth-div 4] [--merge]
"""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

from _conv_bench import CodecBench, codec_parser, random_images, run_codec_benchmark

CARD = "mingtok.vision"
RELEASED = {"low_level_encoder": {"img_size": 512, "patch_size": 32, "depth": 12, "embed_dim": 768, "ffn_layer": "swiglufused",
                                  "out_dim": 32},
            "semantic_decoder": {"in_dim": 32, "patch_size": 32, "embed_dim": 1024, "decoder_depth": 24, "ffn_layer": "swiglufused"},
            "pixel_decoder": {"patch_size": 16, "decoder_depth": 24, "norm_pix_loss": True, "embed_dim": 1024, "loss_type": "L1-plain"},
            "scaling_factor": 8.09449291, "mean": 1.46817409}


def _config(div: int) -> dict:
    cfg = json.loads(json.dumps(RELEASED))
    cfg["low_level_encoder"]["depth"] //= div
    cfg["semantic_decoder"]["decoder_depth"] //= div
    cfg["pixel_decoder"]["decoder_depth"] //= div
    return cfg


def _reference(path: str | None):
    if not path:
        return None
    try:
        from zoo.compat.torchvision import ensure_torchvision

        ensure_torchvision()
        root = Path(path).resolve()
        package = types.ModuleType("mingtok")  # a namespace package (no __init__.py) this script's name would shadow
        package.__path__ = [str(root / "mingtok")]
        sys.modules["mingtok"] = package
        sys.path.insert(0, str(root))
        from mingtok.modeling_mingtok import MingTok, MingTokConfig
    except ImportError as exc:
        print(f"[reference skipped: mingtok not importable from {path}: {exc}]")
        return None
    return MingTok, MingTokConfig


def _build(args, with_ref: bool, with_zoo: bool = True):
    from zoo_plugins.mingtok.builder import from_reference, to_reference
    from zoo_plugins.mingtok.config import from_hf_config

    import zoo
    from zoo.testing.weights import seeded_state_dict, state_manifest

    cfg = _config(args.depth_div)
    classes = _reference(args.ref) if with_ref else None
    ref = None
    if classes is not None:
        ref = classes[0](classes[1](**cfg)).eval()
        state = seeded_state_dict(state_manifest(ref), seed=0)
        ref.load_state_dict(state, strict=True)
        if not with_zoo:
            return None, ref
    ours = zoo.load(CARD, pretrained=False, **from_hf_config(cfg))
    if ref is None:
        state = seeded_state_dict(to_reference(state_manifest(ours), ours.config), seed=0)
    ours.load_state_dict(from_reference(state), strict=True)
    return ours.eval(), ref


def _impls(ours, ref):
    out = {"zoo": (lambda im: ours.encode(im), lambda z: ours.decode(z))}
    if ref is not None:
        def ref_decode(latent):
            feats = ref.semantic_decoder(latent * ref.scaling_factor + ref.mean)["x_norm_patchtokens"]
            return ref.forward_pixel_decoder(feats)

        out["reference"] = (lambda im: ref(im)["latent"], ref_decode)
    return out


def _decode_input(impl, encoded):
    """Both decoders get the reference's latents (zoo's own when the reference is not built)."""
    from dataclasses import replace

    if "reference" not in encoded:
        return encoded["zoo"]
    if impl == "reference":
        return encoded["reference"]
    return replace(encoded["zoo"], values=encoded["reference"])


def main(argv: list[str] | None = None) -> int:
    ap = codec_parser(__doc__.splitlines()[0], "folder holding Ming-UniVision's mingtok/ package")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--depth-div", type=int, default=1, help="divide every tower's depth by this (1 = the release)")
    ap.add_argument("--merge", action="store_true", help="keep the committed record's rows of other settings")
    args = ap.parse_args(argv)
    size = args.size
    depths = f"depths {12 // args.depth_div}/{24 // args.depth_div}/{24 // args.depth_div}"
    notes = [f"{size}x{size} fp32, median of {args.repeats}, interleaved",
             "speedup = reference CPU seconds / zoo CPU seconds; decode runs the reference's latents in both",
             "peak MiB = a fresh child's peak RSS during encode + decode minus its RSS after building the model"]
    return run_codec_benchmark(
        args, script=__file__, build=lambda with_ref, with_zoo: _build(args, with_ref, with_zoo), impls=_impls,
        inputs=lambda b: random_images(b, size),
        bench=lambda ours, ref: CodecBench(
            name="mingtok", title=f"MingTok-Vision encode/decode ({depths})",
            header=f"MingTok-Vision ({depths}), {size}x{size}", model=f"{CARD} ({depths})",
            child_args=["--size", str(size), "--depth-div", str(args.depth_div)], notes=notes,
            decode_input=_decode_input, row_extra={"size": size},
            merge_key=lambda row: (row.get("model"), row.get("batch"))))


if __name__ == "__main__":
    raise SystemExit(main())
