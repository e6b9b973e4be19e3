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

A batch-8 round fills more than a 5-minute slot on a busy 2-core machine; split it into runs that
merge into one record: ``--batches 8 --repeats 1 --no-warmup --no-memory --merge --stages encode``,
then the same with ``--stages decode`` (each row keeps its own ``measured`` date).
"""

from __future__ import annotations

import os
import sys

from _conv_bench import CodecBench, codec_parser, run_codec_benchmark, smooth_images

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
    ap.add_argument("--merge", action="store_true", help="keep the record's rows of other (stage, batch) pairs")
    args = ap.parse_args(argv)

    def decode_input(impl, encoded):  # both decode the reference's ids (zoo: as one [B, 569] row each)
        if "reference" not in encoded:
            return encoded["zoo"]
        return _zoo_layout(encoded["reference"]) if impl == "zoo" else encoded["reference"]

    notes = ["336x336 fp32, random weights (the reference's init; DINOv2 random too), interleaved",
             "speedup = reference CPU seconds / zoo CPU seconds; decode runs the reference's ids in both",
             "peak MiB = a fresh child's peak RSS during encode + decode minus its RSS after building the model"]
    return run_codec_benchmark(
        args, script=__file__, build=lambda with_ref, with_zoo: _build(args, with_ref, with_zoo), impls=_impls,
        inputs=lambda b: smooth_images(b, 336),
        bench=lambda ours, ref: CodecBench(
            name="hita", title=f"Hita ({CARD}) encode/decode", header="Hita vanilla, 336x336", model=CARD,
            child_args=[], notes=notes, decode_input=decode_input, merge_key=lambda r: (r["op"], r["batch"]),
            compared=lambda impl, stage, out: _zoo_layout(out) if impl == "reference" and stage == "encode" else out))


def _zoo_layout(codes):
    """The reference's (patch ids, holistic ids) as zoo's one ``[B, 128 + 441]`` row each."""
    import torch

    zi, qi = codes
    return torch.cat([qi, zi], 1)


if __name__ == "__main__":
    raise SystemExit(main())
