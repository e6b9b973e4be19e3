"""TokenFlow speed and memory: zoo vs ByteFlow-AI/TokenFlow's ``TokenFlow``, same weights, one run.

Builds the released ``tokenflow.clipb_32k`` structure (CLIP ViT-B/16 teacher, enhanced decoder,
9 scales at 256 px) with the reference's random init, loads the same state into zoo through its
builder (strict), and times encode (images -> 817 ids) and decode (the reference's ids -> images),
interleaved, single-threaded, in CPU seconds (median of ``--repeats``). Peak memory per
implementation comes from a fresh child process each (see ``_conv_bench``).

The reference's network-touching constructors are replaced by config-built modules, as in the
parity fixtures: ``clip.load_clip_vision`` -> its ``VisionTransformer`` (224 px, patch 16, width
768, 12 layers) minus ``proj``; ``transformers.modeling_utils.get_parameter_device/dtype`` (gone in
transformers 5) are supplied. It needs ``einops`` and stand-ins for ``pkg_resources`` / ``ftfy``
(imported by its CLIP tokenizer, unused) on ``PYTHONPATH``.

Usage::

    PYTHONPATH=/tmp/pylib python benchmarks/tokenflow.py --ref /tmp/ref/TokenFlow [--batches 1,8] [--repeats 3]

Batch 8 does not fit one 5-minute slot of the shared machine; it is run as two jobs merged into one
record: ``--batches 8 --repeats 1 --no-warmup --no-memory --merge --stages encode``, then
``--batches 8 --repeats 1 --no-warmup --merge --stages decode`` (its memory children measure encode +
decode).

Without ``--ref`` only zoo is timed (the reference columns stay empty).
"""

from __future__ import annotations

import sys

from _conv_bench import CodecBench, codec_parser, random_images, run_codec_benchmark

CARD = "tokenflow.clipb_32k"


def _reference_class(path: str | None):
    if not path:
        return None
    sys.path.insert(0, f"{path}/tokenflow")
    try:
        from zoo.compat.torchvision import ensure_torchvision

        ensure_torchvision()
        import transformers.modeling_utils as mu

        mu.get_parameter_device = getattr(mu, "get_parameter_device", lambda m: next(m.parameters()).device)
        mu.get_parameter_dtype = getattr(mu, "get_parameter_dtype", lambda m: next(m.parameters()).dtype)
        from tokenizer import vq_model as vm
        from tokenizer.clip import model as clip_model
    except ImportError as exc:
        print(f"[reference skipped: TokenFlow not importable from {path}: {exc}]")
        return None

    def load_clip_vision(name, download_root=None):  # no download: the ViT-B/16 structure from config
        v = clip_model.VisionTransformer(input_resolution=224, patch_size=16, width=768, layers=12, heads=12, output_dim=512)
        del v.proj
        return v

    vm.clip.load_clip_vision = load_clip_vision
    return lambda: vm.TokenFlow(vm.ModelArgs(codebook_size=32768, teacher="clipb_224", enhanced_decoder=True,
                                             infer_interpolate=True))


def _build(args, with_ref: bool, with_zoo: bool = True):
    import torch
    from zoo_plugins.tokenflow.builder import TokenFlowBuilder

    import zoo

    torch.manual_seed(0)
    ctor = _reference_class(args.ref) if with_ref else None
    ref = ctor().eval() if ctor is not None else None
    if ref is not None and not with_zoo:
        return None, ref
    ours = zoo.load(CARD, pretrained=False).eval()
    if ref is not None:
        ours.load_state_dict(TokenFlowBuilder().convert(ref.state_dict(), ours.config), strict=True)
    return ours, ref


def _impls(ours, ref):
    out = {"zoo": (lambda im: ours.encode(im).ids, lambda ids: ours.decode(ids, clamp=False))}
    if ref is not None:
        out["reference"] = (lambda im: ref.encode(im)[2], lambda ids: ref.decode_code(ids)[1])
    return out


def main(argv: list[str] | None = None) -> int:
    ap = codec_parser(__doc__.splitlines()[0], "root of a ByteFlow-AI/TokenFlow checkout")
    ap.add_argument("--merge", action="store_true", help="keep the record's rows of other (stage, batch) pairs")
    args = ap.parse_args(argv)
    notes = ["256x256 fp32, random weights (the reference's init), interleaved",
             "speedup = reference CPU seconds / zoo CPU seconds; decode runs the reference's ids in both",
             "peak MiB = a fresh child's peak RSS during encode + decode minus its RSS after building the model"]
    return run_codec_benchmark(
        args, script=__file__, build=lambda with_ref, with_zoo: _build(args, with_ref, with_zoo), impls=_impls,
        inputs=lambda b: random_images(b, 256),
        bench=lambda ours, ref: CodecBench(
            name="tokenflow", title=f"TokenFlow ({CARD}) encode/decode", header="TokenFlow clipb_32k, 256x256",
            model=CARD, child_args=[], notes=notes, merge_key=lambda r: (r["op"], r["batch"])))


if __name__ == "__main__":
    raise SystemExit(main())
