"""MedITok speed and memory: zoo vs Masaaki-75/meditok's ``MedITok``, same weights, one run.

Builds ``meditok.simple_v1`` at the released widths (ViTamin-L: conv stages 160/320, ViT width 1024
with 16 heads and GeGLU MLPs; attention projections to 8 x 8 channels; 8 sub-codebooks of 4096;
ViTamin decoder with conv widths 320/160 and 4 + 2 inverted-MBConv blocks) but with ``--depth`` ViT
blocks in the encoder and in the decoder (31 in the release: at full depth one batch-8 round does
not fit this machine's 5-minute slots) and ``--size`` px images, with the reference's random init,
loads the same state into zoo through its builder (strict), and times encode (images -> ids
``[B, 8, L]``) and decode (the reference's ids -> images), interleaved, single-threaded, in CPU
seconds (median of ``--repeats``). Peak memory per implementation comes from a fresh child process
each.

The reference runs from a checkout (``--ref``; its ``utilities/dist.py`` imports pytz) with the
installed timm. Patched in it: ``timm.create_model`` gets ``depth=--depth`` (configuration), and,
for timm >= 1.0.20 (which passes ``device``/``dtype``/``bias`` keywords its own ``HybridEmbed`` and
``GeGluMlp`` do not take; its requirements pin timm 1.0.8), those two constructors drop the extra
keywords (all None / ``bias=True``, which is what they build anyway).

Usage::

    PYTHONPATH=/tmp/pylib python benchmarks/meditok.py --ref /tmp/ref/meditok [--batches 1,8] [--repeats 3]
"""

from __future__ import annotations

import functools
import inspect
import sys

from _conv_bench import CodecBench, codec_parser, run_codec_benchmark, smooth_images

CARD = "meditok.simple_v1"


def _drop_unknown_kwargs(cls) -> None:
    init = cls.__init__
    known = set(inspect.signature(init).parameters)

    @functools.wraps(init)
    def wrapped(self, *a, **kw):
        init(self, *a, **{k: v for k, v in kw.items() if k in known})

    cls.__init__ = wrapped


def _reference(path: str | None, depth: int, size: int):
    if not path:
        return None
    sys.path.insert(0, path)
    try:
        from zoo.compat.torchvision import ensure_torchvision

        ensure_torchvision()
        import models.meditok as M
        import models.vitamin as V
        import timm
    except ImportError as exc:
        print(f"[reference skipped: MedITok not importable from {path} ({exc})]")
        return None
    _drop_unknown_kwargs(V.HybridEmbed)
    _drop_unknown_kwargs(V.GeGluMlp)
    create = timm.create_model
    timm.create_model = lambda name, *a, **kw: create(name, *a, **{"depth": depth, **kw})
    return M.MedITok(M.get_meditok_args(size)).eval()


def _build(args, with_ref: bool, with_zoo: bool = True):
    import torch
    from zoo_plugins.meditok.builder import MedITokBuilder

    import zoo

    torch.manual_seed(0)
    ref = _reference(args.ref, args.depth, args.size) if with_ref else None
    if ref is not None and not with_zoo:
        return None, ref
    ours = zoo.load(CARD, pretrained=False, depth=args.depth, image_size=args.size).eval()
    if ref is not None:
        ours.load_state_dict(MedITokBuilder().convert(ref.state_dict(), ours.config), strict=True)
    return ours, ref


def _impls(ours, ref):
    out = {}
    if ours is not None:
        out["zoo"] = (lambda im: ours.encode(im).ids, lambda ids: ours.decode(ids))
    if ref is not None:
        out["reference"] = (ref.img_to_idx, ref.idx_to_img)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = codec_parser(__doc__.splitlines()[0], "root of a Masaaki-75/meditok checkout")
    ap.add_argument("--depth", type=int, default=8, help="ViT blocks in the encoder and in the decoder (release: 31)")
    ap.add_argument("--size", type=int, default=128, help="image side in px (release: 256)")
    ap.add_argument("--merge", action="store_true", help="keep the record's rows of other (stage, batch, size, depth)")
    args = ap.parse_args(argv)
    notes = ["fp32, released widths; each row's size (px) and depth (ViT blocks in encoder and decoder; the release: "
             "256 px, 31) as run; random weights (the reference's init), interleaved",
             "speedup = reference CPU seconds / zoo CPU seconds; decode runs the reference's ids in both",
             "zoo's decoder computes each nearest-2x + conv3x3 at the low resolution (4 phase convs with summed taps)",
             "peak MiB = a fresh child's peak RSS during encode + decode minus its RSS after building the model"]
    return run_codec_benchmark(
        args, script=__file__, build=lambda with_ref, with_zoo: _build(args, with_ref, with_zoo), impls=_impls,
        inputs=lambda b: smooth_images(b, args.size),
        bench=lambda ours, ref: CodecBench(
            name="meditok", title=f"MedITok ({CARD}) encode/decode",
            header=f"MedITok simple_v1 (ViTamin-L widths, depth {args.depth}), {args.size}x{args.size}", model=CARD,
            child_args=["--depth", str(args.depth), "--size", str(args.size)], notes=notes,
            row_extra={"size": args.size, "depth": args.depth}, merge_key=lambda r: (r["op"], r["batch"], r.get("size"), r.get("depth"))))


if __name__ == "__main__":
    raise SystemExit(main())
