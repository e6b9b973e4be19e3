"""Hita speed and memory: zoo vs CVMI-Lab/Hita's ``VQModel``, same weights, one run.

Builds ``hita.vanilla`` at its released size (``configs/hita_vqgan.yaml``: 336 px, LlamaGen conv
encoder/decoder ch 128 with ``z_channels`` 512, frozen DINOv2 ViT-L/14-reg4, 3 + 3 + 3 transformer
blocks of width 512, 128 holistic tokens, two 16384-code codebooks) with the reference's random init,
loads the same state into zoo through its builder (strict), and times encode (images -> 569 ids)
and decode (the reference's ids -> images), interleaved, single-threaded, in CPU seconds (median of
``--repeats``). Peak memory per implementation comes from a fresh child process each.

Patched in the reference (it runs from a checkout on ``PYTHONPATH`` with einops, omegaconf, kornia
and kornia_rs; ``refile`` and ``cv2`` are imported but unused, so stand-in modules do):
``dinov2_vitl14_reg(pretrained=True)`` downloads -> built with ``pretrained=False``;
``load_pretrained_dino_v2`` reads a file -> keeps the random init; ``Tensor.cuda`` /
``Module.cuda`` -> no-ops; ``XFORMERS_DISABLED=1``.

Usage::

    PYTHONPATH=/tmp/pylib python benchmarks/hita.py --ref /tmp/ref/Hita [--batches 1,8] [--repeats 3]
"""

from __future__ import annotations

import os
import sys

from _conv_bench import codec_parser, child_memory, measure_child, time_impls
from _record import start

CARD = "hita.vanilla"


def _reference(path: str | None):
    if not path:
        return None
    import torch

    os.environ["XFORMERS_DISABLED"] = "1"
    # the checkout's `hita` is a namespace package (no __init__.py): any module named hita on sys.path wins
    # over it, this script included, so the script's folder leaves sys.path (its helpers are imported already)
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    sys.path.insert(0, path)
    try:
        from zoo.compat.torchvision import ensure_torchvision

        ensure_torchvision()
        import hita.modules.pretrained_enc.models_pretrained_enc as mpe
        import hita.tokenizer.tokenizer_image.vq_model as vm
        from omegaconf import OmegaConf
    except ImportError as exc:
        print(f"[reference skipped: Hita not importable from {path} ({exc})]")
        return None
    torch.Tensor.cuda = lambda self, *a, **k: self
    torch.nn.Module.cuda = lambda self, *a, **k: self
    build = mpe.dinov2_vitl14_reg
    mpe.dinov2_vitl14_reg = lambda **kw: build(pretrained=False, **kw)
    mpe.load_pretrained_dino_v2 = lambda model, path: model
    cfg = OmegaConf.load(f"{path}/configs/hita_vqgan.yaml")
    return vm.VQModel(vm.ModelArgs(codebook_size=16384, codebook_embed_dim=8, codebook_slots_embed_dim=12,
                                   transformer_config=cfg, z_channels=512)).eval()


def _build(args, with_ref: bool, with_zoo: bool = True):
    import torch
    from zoo_plugins.hita.builder import HitaBuilder

    import zoo

    torch.manual_seed(0)
    ref = _reference(args.ref) if with_ref else None
    if ref is not None and not with_zoo:
        return None, ref
    ours = zoo.load(CARD, pretrained=False).eval()
    if ref is not None:
        ours.load_state_dict(HitaBuilder().convert(ref.state_dict(), ours.config), strict=True)
    return ours, ref


def _impls(ours, ref):
    out = {}
    if ours is not None:
        out["zoo"] = (lambda im: ours.encode(im).ids, lambda ids: ours.decode(ids, clamp=False))
    if ref is not None:
        def ref_encode(im):
            _, _, (zi, qi) = ref.encode(im)
            return zi.view(im.shape[0], -1), qi.view(im.shape[0], -1)

        def ref_decode(codes):
            zi, qi = codes
            return ref.decode_from_indices(zi.reshape(-1), qi.reshape(-1), (zi.shape[0], 8, 21, 21))[0]

        out["reference"] = (ref_encode, ref_decode)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = codec_parser(__doc__.splitlines()[0], "root of a CVMI-Lab/Hita checkout")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)

    def inputs(b: int) -> torch.Tensor:
        low = torch.rand(b, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
        return torch.nn.functional.interpolate(low, size=(336, 336), mode="bicubic").clamp(-1, 1)

    if args.memory_child:
        ours, ref = _build(args, with_ref=args.memory_child == "reference", with_zoo=args.memory_child == "zoo")
        enc, dec = _impls(ours, ref)[args.memory_child]
        measure_child(enc, dec, inputs(args.batch))
        return 0

    ours, ref = _build(args, with_ref=True)
    impls = _impls(ours, ref)
    run = start("hita", title=f"Hita ({CARD}) encode/decode", kind="tokenizer", threads=args.threads,
                settings=vars(args), reference=args.ref if ref is not None else None, results=args.results)

    def decode_input(n, enc):  # both decode the reference's ids (zoo: as one [B, 569] row each)
        if ref is None:
            return enc["zoo"]
        zi, qi = enc["reference"]
        return torch.cat([qi, zi], 1) if n == "zoo" else (zi, qi)

    rows = []
    print(f"Hita vanilla, 336x336, fp32, {args.threads} thread(s), torch {torch.__version__}, median of {args.repeats} (CPU seconds)")
    print(f"{'stage':7} {'batch':>5} {'impl':10} {'cpu-s':>8} {'wall-s':>8} {'img/s':>7} {'speed-up':>8} {'peak MiB':>9} {'agreement':>24}")
    for b in (int(v) for v in args.batches.split(",")):
        x = inputs(b)
        cpu, wall, outs = time_impls(impls, x, args.repeats, decode_input)
        mem = {n: (None if args.no_memory else child_memory(__file__, n, b, ["--ref", args.ref] if args.ref else []))
               for n in impls}
        for stage in ("encode", "decode"):
            for n in impls:
                t, rt = cpu[(n, stage)], cpu.get(("reference", stage))
                if ref is None:
                    agree, note = None, "-"
                elif stage == "encode":
                    zi, qi = outs[("reference", "encode")]
                    want = torch.cat([qi, zi], 1)
                    got = outs[(n, stage)] if n == "zoo" else want
                    agree = float((got == want).float().mean())
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
    run.write(rows, notes=["336x336 fp32, random weights (the reference's init; DINOv2 random too), interleaved",
                           "speedup = reference CPU seconds / zoo CPU seconds; decode runs the reference's ids in both",
                           "peak MiB = a fresh child's peak RSS during encode + decode minus its RSS after building the model"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
