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

Without ``--ref`` only zoo is timed (the reference columns stay empty).
"""

from __future__ import annotations

import sys

from _conv_bench import codec_parser, child_memory, measure_child, time_impls
from _record import start

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
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)

    def inputs(b: int) -> torch.Tensor:
        return torch.rand(b, 3, 256, 256, generator=torch.Generator().manual_seed(0)) * 2 - 1

    if args.memory_child:
        ours, ref = _build(args, with_ref=args.memory_child == "reference", with_zoo=args.memory_child == "zoo")
        enc, dec = _impls(ours, ref)[args.memory_child]
        measure_child(enc, dec, inputs(args.batch))
        return 0

    ours, ref = _build(args, with_ref=True)
    impls = _impls(ours, ref)
    run = start("tokenflow", title=f"TokenFlow ({CARD}) encode/decode", kind="tokenizer", threads=args.threads,
                settings=vars(args), reference=args.ref if ref is not None else None, results=args.results)
    base = "reference" if ref is not None else "zoo"
    rows = []
    print(f"TokenFlow clipb_32k, 256x256, fp32, {args.threads} thread(s), torch {torch.__version__}, "
          f"median of {args.repeats} (CPU seconds)")
    print(f"{'stage':7} {'batch':>5} {'impl':10} {'cpu-s':>8} {'wall-s':>8} {'img/s':>7} {'speed-up':>8} "
          f"{'peak MiB':>9} {'agreement':>24}")
    for b in (int(v) for v in args.batches.split(",")):
        x = inputs(b)
        cpu, wall, outs = time_impls(impls, x, args.repeats, lambda n, enc: enc[base])
        mem = {n: (None if args.no_memory else child_memory(__file__, n, b, ["--ref", args.ref] if args.ref else []))
               for n in impls}
        for stage in ("encode", "decode"):
            for n in impls:
                t, rt = cpu[(n, stage)], cpu.get(("reference", stage))
                if ref is None:
                    agree, note = None, "-"
                elif stage == "encode":
                    agree = float((outs[(n, stage)] == outs[("reference", stage)]).float().mean())
                    note = f"ids equal {agree * 100:.2f}%"
                else:
                    agree = float((outs[(n, stage)] - outs[("reference", stage)]).abs().max())
                    note = f"max|diff| {agree:.2e}"
                speed = f"{rt / t:7.2f}x" if rt else "       -"
                m = mem.get(n)
                print(f"{stage:7} {b:5d} {n:10} {t:8.2f} {wall[(n, stage)]:8.2f} {b / t:7.3f} {speed} "
                      f"{(f'{m:9.0f}' if m is not None else '        -')} {note:>24}")
                if n == "zoo":
                    rows.append({"model": CARD, "op": stage, "batch": b, "unit": "img/s", "zoo_s": t, "ref_s": rt,
                                 "zoo_per_s": b / t, "ref_per_s": b / rt if rt else None,
                                 "speedup": rt / t if rt else None, "zoo_wall_s": wall[(n, stage)],
                                 "zoo_peak_mib": mem.get("zoo"), "ref_peak_mib": mem.get("reference"),
                                 "ids_equal_fraction" if stage == "encode" else "max_abs_diff_vs_ref": agree,
                                 "check": note if ref is not None else None})
    run.write(rows, notes=["256x256 fp32, random weights (the reference's init), interleaved",
                           "speedup = reference CPU seconds / zoo CPU seconds; decode runs the reference's ids in both",
                           "peak MiB = a fresh child's peak RSS during encode + decode minus its RSS after building the model"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
