"""Token reducers, side by side: img/s, GMACs, tokens per layer and feature cosine.

One run, random weights (say so when quoting: cosine to the unreduced model on random weights
says how much the features move, not accuracy), configurations interleaved round-robin, medians
of ``--reps`` timed forwards after a warm-up; ratios to the unreduced model measured in the same
run. On CPU the time is CPU-seconds of this process (``time.process_time``; robust on a shared
machine, equal to wall time for one uncontended thread); on CUDA it is synchronised wall time. The reference ToMe patch (``--ref-tome /path/to/ToMe``) runs beside zoo's at the same r.

    python benchmarks/reducers.py --threads 1 --batch 32 --ref-tome /tmp/ref/tome
    python benchmarks/reducers.py --device cuda --dtype bf16 --backends sdpa xformers   # on a GPU

GMACs are analytic from the tokens entering each block: per block ``12·N·D² + 2·N²·D`` (qkv, proj,
MLP 4x, QK^T and AV), plus the patch embedding. They count every row of the last block, although
zoo's patched ``forward`` computes only the class row there (``--all-rows`` also times zoo ToMe
without that shortcut).
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from _record import add_results_option, start


def gmacs(model, tokens_per_layer: list[int]) -> float:
    d = model.embed_dim
    pe = model.patch_embed
    n_patches = pe.num_patches
    k = pe.proj.kernel_size[0] * pe.proj.kernel_size[1] * pe.proj.in_channels
    total = n_patches * k * d
    for n in tokens_per_layer:
        total += 12 * n * d * d + 2 * n * n * d
    return total / 1e9


def _timm():
    from zoo.compat.torchvision import import_timm

    return import_timm()


def build_configs(name: str, ref_tome: Path | None, rs: list[int], backend: str | None,
                  methods: tuple[str, ...] = ("tome", "diffrate", "evit", "mctf"), all_rows: bool = False):
    """[(label, model, handle-or-None)]: the unreduced model, zoo's reducers, the reference ToMe."""
    from zoo_plugins.reducers.reducers import MCTF, DiffRate, EViT, ToMe

    timm = _timm()
    base = timm.create_model(name, pretrained=False).eval()
    configs = [("baseline", base, None)]
    for r in rs if "tome" in methods else []:
        m = copy.deepcopy(base)
        configs.append((f"zoo tome r={r}", m, ToMe().apply(m, r=r, backend=backend)))
        if all_rows:  # the same, without computing only the class row in the last block
            m = copy.deepcopy(base)
            handle = ToMe().apply(m, r=r, backend=backend)
            handle.state.head_rows_only = False
            configs.append((f"zoo tome r={r} all rows", m, handle))
        if ref_tome is not None:
            if str(ref_tome) not in sys.path:
                sys.path.insert(0, str(ref_tome))
            import tome

            m = copy.deepcopy(base)
            tome.patch.timm(m)
            m.r = r
            configs.append((f"ref tome r={r}", m, None))
    # several schedules per method: DiffRate's published FLOPs targets, EViT keep rates, MCTF r
    arch = {384: ("ViT-S-DeiT", ("2.3", "2.9")), 768: ("ViT-B-DeiT", ("8.7", "11.5")),
            192: ("ViT-T-DeiT", ("0.6", "0.8"))}.get(base.embed_dim)
    for flops in arch[1] if arch is not None and "diffrate" in methods else ():
        m = copy.deepcopy(base)
        configs.append((f"zoo diffrate {arch[0]} {flops}G", m, DiffRate().apply(m, arch=arch[0], flops=flops, backend=backend)))
    for keep in (0.5, 0.7) if "evit" in methods else ():
        m = copy.deepcopy(base)
        configs.append((f"zoo evit {keep}@3,6,9", m, EViT().apply(m, keep_rate=keep, backend=backend)))
    for r in (8, 16) if "mctf" in methods else ():
        m = copy.deepcopy(base)
        configs.append((f"zoo mctf r={r}", m, MCTF().apply(m, r=r, backend=backend)))
    return configs


def run(args) -> list[dict]:
    torch.set_num_threads(args.threads)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[args.dtype]
    rows = []
    for name in args.models:
        for backend in args.backends:
            configs = build_configs(name, args.ref_tome, args.r, backend, tuple(args.methods), args.all_rows)
            for _, m, _ in configs:
                m.to(args.device, dtype)
            x = torch.randn(args.batch, 3, 224, 224, generator=torch.Generator().manual_seed(0)).to(args.device, dtype)
            cuda = args.device.startswith("cuda")
            sync = torch.cuda.synchronize if cuda else (lambda: None)
            clock = time.perf_counter if cuda else time.process_time
            times = {label: [] for label, _, _ in configs}
            feats, tpl = {}, {}
            with torch.inference_mode():
                for label, m, _ in configs:  # warm-up, pre-logit features, token counts
                    feats[label], tpl[label] = _probe(m, x)
                for _ in range(args.reps):  # interleaved
                    for label, m, _ in configs:
                        sync()
                        t0 = clock()
                        m(x)
                        sync()
                        times[label].append(clock() - t0)
            base_t = statistics.median(times["baseline"])
            for label, m, _ in configs:
                med = statistics.median(times[label])
                rows.append({
                    "model": name, "backend": backend or "sdpa", "config": label,
                    "img_s": args.batch / med, "speedup": base_t / med,
                    "gmacs": gmacs(m, tpl[label]), "tokens": tpl[label],
                    "cosine": torch.nn.functional.cosine_similarity(feats[label], feats["baseline"]).mean().item(),
                })
                print(_fmt(rows[-1]), flush=True)
    return rows


def _probe(model, x) -> tuple[torch.Tensor, list[int]]:
    """Pre-logit features and tokens entering each block, from one full forward (the reference
    ToMe patch only works through ``forward``)."""
    counts, feats = [], []
    hooks = [b.register_forward_pre_hook(lambda mod, inp: counts.append(inp[0].shape[1])) for b in model.blocks]
    hooks.append(model.head.register_forward_pre_hook(lambda mod, inp: feats.append(inp[0].float())))
    try:
        model(x)
    finally:
        for h in hooks:
            h.remove()
    return feats[0], counts


def _fmt(r: dict) -> str:
    return (f"| {r['model']} | {r['backend']} | {r['config']} | {r['img_s']:.2f} | {r['speedup']:.2f}x | "
            f"{r['gmacs']:.2f} | {r['cosine']:.4f} | {r['tokens'][0]}→{r['tokens'][-1]} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["vit_base_patch16_224", "deit_small_patch16_224"])
    ap.add_argument("--r", nargs="+", type=int, default=[8, 13, 16])
    ap.add_argument("--methods", nargs="+", default=["tome", "diffrate", "evit", "mctf"],
                    help="in-model reducers to include (tome runs beside the reference ToMe)")
    ap.add_argument("--all-rows", action="store_true",
                    help="also time zoo ToMe with every row computed in the last block (no class-row shortcut)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="fp32", choices=["fp32", "bf16", "fp16"])
    ap.add_argument("--backends", nargs="+", default=[None], help="zoo attention backends (sdpa, math, xformers)")
    ap.add_argument("--ref-tome", type=Path, default=None, help="checkout of facebookresearch/ToMe (skipped if absent)")
    ap.add_argument("--json", type=Path, default=None, help="write the rows here (for scripts/plot_reducers.py)")
    add_results_option(ap)
    args = ap.parse_args()
    if args.ref_tome is not None and not args.ref_tome.exists():
        print(f"reference ToMe not found at {args.ref_tome}; running zoo only")
        args.ref_tome = None
    print("| model | backend | config | img/s | vs baseline | GMACs | cosine (random weights) | tokens in→last |")
    print("|---|---|---|---|---|---|---|---|")
    record = start("reducers", title="Token reducers: speed vs fidelity", kind="reducer", threads=args.threads,
                   settings=vars(args), reference=args.ref_tome, results=args.results, device=args.device)
    rows = run(args)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    record.write(rows, notes=[(f"batch {args.batch}, {args.dtype}, median of {args.reps} interleaved forwards; "
                              "speedup = img/s over the unreduced model in the same run"),
                              ("cosine: pre-logit features vs the unreduced model on random weights (how far features "
                              "move, not accuracy); GMACs analytic from the tokens entering each block")])


if __name__ == "__main__":
    main()
