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

from _conv_bench import codec_parser, child_memory, measure_child, time_impls
from _record import start

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

    import torch

    torch.set_num_threads(args.threads)

    def inputs(b: int) -> torch.Tensor:
        low = torch.rand(b, 3, 16, 16, generator=torch.Generator().manual_seed(0))
        return torch.nn.functional.interpolate(low, size=(256, 256), mode="bicubic").clamp(0, 1) * 2 - 1

    if args.memory_child:
        ours, ref_tok = _build(args, with_ref=args.memory_child == "reference", with_zoo=args.memory_child == "zoo")
        enc, dec = _impls(ours, ref_tok)[args.memory_child]
        measure_child(enc, dec, inputs(args.batch))
        return 0

    ours, ref_tok = _build(args, with_ref=True)
    impls = _impls(ours, ref_tok)
    run = start("digit", title=f"DiGIT ({CARD}) encode", kind="tokenizer", threads=args.threads,
                settings=vars(args), reference=args.ref if ref_tok is not None else None, results=args.results)
    base = "reference" if ref_tok is not None else "zoo"
    rows = []
    print(f"DiGIT base_8k (DINOv2 ViT-B/14-reg4, 8192 centroids), 256x256, fp32, {args.threads} thread(s), "
          f"torch {torch.__version__}, median of {args.repeats} (CPU seconds)")
    print(f"{'stage':7} {'batch':>5} {'impl':10} {'cpu-s':>8} {'wall-s':>8} {'img/s':>7} {'speed-up':>8} {'peak MiB':>9} {'agreement':>18}")
    for b in (int(v) for v in args.batches.split(",")):
        x = inputs(b)
        cpu, wall, outs = time_impls(impls, x, args.repeats, lambda n, enc: enc[base])
        mem = {n: (None if args.no_memory else child_memory(__file__, n, b, ["--ref", args.ref] if args.ref else []))
               for n in impls}
        for n in impls:
            t, rt = cpu[(n, "encode")], cpu.get(("reference", "encode"))
            agree = float((outs[(n, "encode")] == outs[("reference", "encode")]).float().mean()) if ref_tok is not None else None
            note = f"ids equal {agree * 100:.2f}%" if agree is not None else "-"
            speed = f"{rt / t:7.2f}x" if rt else "       -"
            m = mem.get(n)
            print(f"{'encode':7} {b:5d} {n:10} {t:8.2f} {wall[(n, 'encode')]:8.2f} {b / t:7.3f} {speed} "
                  f"{(f'{m:9.0f}' if m is not None else '        -')} {note:>18}")
            if n == "zoo":
                rows.append({"model": CARD, "op": "encode", "batch": b, "unit": "img/s", "zoo_s": t, "ref_s": rt,
                             "zoo_per_s": b / t, "ref_per_s": b / rt if rt else None, "speedup": rt / t if rt else None,
                             "zoo_wall_s": wall[(n, "encode")], "zoo_peak_mib": mem.get("zoo"),
                             "ref_peak_mib": mem.get("reference"), "ids_equal_fraction": agree,
                             "check": note if ref_tok is not None else None})
    run.write(rows, notes=["256x256 fp32, random weights (the reference's init), random centroids, interleaved",
                           "speedup = reference CPU seconds / zoo CPU seconds",
                           "peak MiB = a fresh child's peak RSS during encode minus its RSS after building the model"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
