"""DiGIT speed and memory: zoo vs DAMO-NLP-SG/DiGIT's tokenizer path, same weights, one run.

Builds ``digit.base_8k`` at its released size (DINOv2 ViT-B/14-reg4, 8192 centroids of width 768)
with the reference's random init (``vit_base(14, 4, block_chunks=0, init_values=1)``), loads the same
state into zoo through its builder (strict), and times encode (256 px images -> 256 ids), interleaved,
single-threaded, in CPU seconds (median of ``--repeats``). Peak memory per implementation comes from a
fresh child process each. DiGIT has no decoder: only encode is timed.

The reference runs from a checkout: its ``fairseq_user/pretrained_enc/dino/vits.py`` (with
``XFORMERS_DISABLED=1``; its xFormers-only ``SwiGLU`` base class is given a stand-in, the class is
unused) and the source of ``STTransformerLanguageModel.prepare_semantic`` taken from
``image_generation_stage1/model.py`` and run alone (fairseq is not importable here), with
``Tensor.cuda`` made a no-op (it hard-codes ``.cuda()``).

Usage::

    python benchmarks/digit.py --ref /tmp/ref/DiGIT [--batches 1,8] [--repeats 3]

Without ``--ref`` only zoo is timed.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import types

from _conv_bench import CodecBench, codec_parser, run_codec_benchmark, smooth_images

CARD = "digit.base_8k"


def _reference(path: str | None):
    """``(vit, tokenize)`` from a DiGIT checkout, or None."""
    if not path:
        return None
    import torch

    os.environ["XFORMERS_DISABLED"] = "1"
    try:
        spec = importlib.util.spec_from_file_location("digit_ref_vits", f"{path}/fairseq_user/pretrained_enc/dino/vits.py")
        vits = importlib.util.module_from_spec(spec)
        vits.SwiGLU = torch.nn.Module  # the xFormers base of an unused class
        spec.loader.exec_module(vits)
        src = open(f"{path}/fairseq_user/image_generation_stage1/model.py").read()
    except (OSError, ImportError) as exc:
        print(f"[reference skipped: DiGIT not importable from {path}: {exc}]")
        return None
    fn = next(n for n in ast.walk(ast.parse(src)) if isinstance(n, ast.FunctionDef) and n.name == "prepare_semantic")
    fn.decorator_list = []
    ns = {"torch": torch}
    exec(compile(ast.Module([fn], []), "prepare_semantic", "exec"), ns)
    torch.Tensor.cuda = lambda self, *a, **k: self
    vit = vits.vit_base(14, 4, block_chunks=0, init_values=1, img_size=518).eval()
    return vit, ns["prepare_semantic"]


def _build(args, with_ref: bool, with_zoo: bool = True):
    import torch
    from zoo_plugins.digit.builder import DiGITBuilder

    import zoo

    torch.manual_seed(0)
    ref = _reference(args.ref) if with_ref else None
    centroids = torch.randn(8192, 768, generator=torch.Generator().manual_seed(1))
    ref_tok = None
    if ref is not None:
        vit, prepare = ref
        c = centroids.t().contiguous()
        self_ = types.SimpleNamespace(pretrained_encoder=vit, centroids=c, centroid_norm=(c ** 2).sum(0, keepdims=True),
                                      args=types.SimpleNamespace(pretrained_enc_config=types.SimpleNamespace(layer=3)),
                                      decoder=types.SimpleNamespace(dictionary=types.SimpleNamespace(nspecial=4)))
        ref_tok = lambda im: prepare(self_, (im + 1) / 2, None) - 4  # noqa: E731 - the reference takes [0, 1]
        if not with_zoo:
            return None, ref_tok
    ours = zoo.load(CARD, pretrained=False).eval()
    if ref is not None:
        state = {f"encoder.{k}": v for k, v in ref[0].state_dict().items()} | {"kmeans.centroids": centroids}
        ours.load_state_dict(DiGITBuilder().convert(state, ours.config), strict=True)
    else:
        ours.kmeans.centroids.copy_(centroids)
    return ours, ref_tok


def _impls(ours, ref_tok):
    out = {"zoo": (lambda im: ours.encode(im).ids, lambda ids: ids)}
    if ref_tok is not None:
        out["reference"] = (ref_tok, lambda ids: ids)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = codec_parser(__doc__.splitlines()[0], "root of a DAMO-NLP-SG/DiGIT checkout")
    args = ap.parse_args(argv)
    notes = ["256x256 fp32, random weights (the reference's init), random centroids, interleaved",
             "speedup = reference CPU seconds / zoo CPU seconds",
             "peak MiB = a fresh child's peak RSS during encode minus its RSS after building the model"]
    return run_codec_benchmark(
        args, script=__file__, build=lambda with_ref, with_zoo: _build(args, with_ref, with_zoo), impls=_impls,
        inputs=lambda b: smooth_images(b, 256),
        bench=lambda ours, ref: CodecBench(
            name="digit", title=f"DiGIT ({CARD}) encode",
            header="DiGIT base_8k (DINOv2 ViT-B/14-reg4, 8192 centroids), 256x256", model=CARD, child_args=[],
            notes=notes, stages=("encode",)))


if __name__ == "__main__":
    raise SystemExit(main())
