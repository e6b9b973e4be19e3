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

from _conv_bench import codec_parser, child_memory, measure_child, time_impls
from _record import start

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

    import torch

    torch.set_num_threads(args.threads)
    f = 16 if args.model == "ds16" else 8
    grid = (args.size // f, args.size // f)

    def inputs(b: int) -> torch.Tensor:
        return torch.rand(b, 3, args.size, args.size, generator=torch.Generator().manual_seed(0)) * 2 - 1

    if args.memory_child:
        ours, ref = _build(args, with_ref=args.memory_child == "reference", with_zoo=args.memory_child == "zoo")
        enc, dec = _impls(ours, ref, grid)[args.memory_child]
        measure_child(enc, dec, inputs(args.batch))
        return 0

    ours, ref = _build(args, with_ref=True)
    impls = _impls(ours, ref, grid)
    run = start("llamagen_vq", title=f"LlamaGen VQ ({CONFIGS[args.model][1]}) encode/decode", kind="tokenizer",
                threads=args.threads, settings=vars(args), reference=args.ref if ref is not None else None,
                results=args.results)
    base = "reference" if ref is not None else "zoo"
    rows = []
    print(f"LlamaGen {CONFIGS[args.model][0]}, {args.size}x{args.size}, fp32, {args.threads} thread(s), "
          f"torch {torch.__version__}, median of {args.repeats} (CPU seconds)")
    print(f"{'stage':7} {'batch':>5} {'impl':10} {'cpu-s':>8} {'wall-s':>8} {'img/s':>7} {'speed-up':>8} "
          f"{'peak MiB':>9} {'agreement':>24}")
    for b in (int(v) for v in args.batches.split(",")):
        x = inputs(b)
        cpu, wall, outs = time_impls(impls, x, args.repeats, lambda n, enc: enc[base])
        mem = {n: (None if args.no_memory else child_memory(__file__, n, b, ["--model", args.model, "--size", str(args.size)]
                                                            + (["--ref", args.ref] if args.ref else [])))
               for n in impls}
        for stage in ("encode", "decode"):
            for n in impls:
                t, rt = cpu[(n, stage)], cpu.get(("reference", stage))
                if stage == "encode" and ref is not None:
                    agree = float((outs[(n, stage)] == outs[("reference", stage)]).float().mean())
                    note = f"ids equal {agree * 100:.2f}%"
                elif ref is not None:
                    agree = float((outs[(n, stage)] - outs[("reference", stage)]).abs().max())
                    note = f"max|diff| {agree:.2e}"
                else:
                    agree, note = None, "-"
                speed = f"{rt / t:7.2f}x" if rt else "       -"
                m = mem.get(n)
                print(f"{stage:7} {b:5d} {n:10} {t:8.2f} {wall[(n, stage)]:8.2f} {b / t:7.3f} {speed} "
                      f"{(f'{m:9.0f}' if m is not None else '        -')} {note:>24}")
                if n == "zoo":
                    rows.append({"model": CONFIGS[args.model][1], "op": stage, "batch": b, "unit": "img/s",
                                 "zoo_s": t, "ref_s": rt, "zoo_per_s": b / t, "ref_per_s": b / rt if rt else None,
                                 "speedup": rt / t if rt else None, "zoo_wall_s": wall[(n, stage)],
                                 "zoo_peak_mib": mem.get("zoo"), "ref_peak_mib": mem.get("reference"),
                                 "ids_equal_fraction" if stage == "encode" else "max_abs_diff_vs_ref": agree,
                                 "check": note if ref is not None else None})
    run.write(rows, notes=[f"{args.size}x{args.size} fp32, median of {args.repeats}, interleaved",
                           "speedup = reference CPU seconds / zoo CPU seconds; decode runs the reference's ids in both",
                           "peak MiB = a fresh child's peak RSS during encode + decode minus its RSS after building the model "
                           "(MALLOC_MMAP_THRESHOLD_=131072: freed blocks leave RSS, so it tracks live tensors)"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
