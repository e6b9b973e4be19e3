"""Side-by-side generation speed: zoo vs the reference implementations, same weights, same
sampler settings, same seeds, measured in one run (interleaved repetitions, medians).

* MaskGIT (TiTok-L-32 ImageBert, 24x768, 32 tokens, 8 steps, linear CFG): images/s.
* RAR-B (24x768, CFG as 2B, 256 tokens): tokens/s.
* OuteTTS-0.1-350M's LM (Llama 20x896): tokens/s against transformers' ``generate``.

Weights are random (regenerated per key); the reference runs with its random draws routed to
the same seed, so the benchmark also reports whether the generated ids are equal. Throughput is
computed from the process's CPU time (``time.process_time``; the machine is shared), with the
wall-time ratio alongside.

``--roofline`` adds the bandwidth arithmetic for the autoregressive models: the fp32 weight
bytes one decode step reads (zoo and reference), the streaming read bandwidth measured in the
same run (``sum`` over a 1 GiB buffer) and the tokens/s ceiling it implies at batch 1.

Usage:
    python benchmarks/generators.py --ref-1d /tmp/ref/1d-tokenizer [--threads 1] [--reps 3] [--roofline]
    realistic batches: --maskgit-batch 8 --rar-batch 8 --tts-batch 4
    (transformers must be importable for the MaskGIT and OuteTTS references; parts whose
    reference is missing are skipped.)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from _generator import gemm_peak
from _record import add_results_option, start

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts" / "parity"))


from record_generators import _routed_rng as routed_rng  # noqa: E402 - the recorder's RNG routing, shared


def seeded(model):
    from zoo.testing.weights import seeded_state_dict, state_manifest

    sd = seeded_state_dict(state_manifest(model))
    model.load_state_dict(sd, strict=True)
    return sd


def timed(fn):
    """(CPU seconds of this process, wall seconds, result)."""
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    return time.process_time() - c0, time.perf_counter() - t0, out


def interleave(ref_fn, zoo_fn, reps: int):
    """Run ref, zoo, ref, zoo... (after one warm-up each); medians of CPU and wall time.
    ``ref_fn=None`` times zoo alone (the reference's times are then None)."""
    if ref_fn is not None:
        ref_fn()
    zoo_fn()  # warm-up
    rc, rw, zc, zw, outs = [], [], [], [], None
    for _ in range(reps):
        a, aw, ra = timed(ref_fn) if ref_fn is not None else (None, None, None)
        b, bw, za = timed(zoo_fn)
        rc.append(a), rw.append(aw), zc.append(b), zw.append(bw)
        outs = (ra, za)
    med = statistics.median
    ref_t = (med(rc), med(rw)) if ref_fn is not None else None
    return ref_t, (med(zc), med(zw)), outs


def row(model: str, unit: str, work: float, rt, zt, ids_equal: bool | None) -> dict:
    """A table row: throughput from CPU time (and the wall-time ratio alongside); ``rt=None``: zoo only."""
    return {"model": model, "unit": unit, "ref": work / rt[0] if rt else None, "zoo": work / zt[0],
            "ratio_wall": rt[1] / zt[1] if rt else None, "ids_equal": ids_equal, "zoo_s": zt[0],
            "ref_s": rt[0] if rt else None}


def bench_maskgit(ref: Path | None, batch: int, reps: int) -> dict:
    from zoo_plugins.maskgit.config import MaskGITConfig
    from zoo_plugins.maskgit.model import build_generator

    z = build_generator(MaskGITConfig(image_seq_len=32)).eval()
    if ref is not None:
        sys.path.insert(0, str(ref))
        from modeling.maskgit import ImageBert  # noqa: PLC0415 - the reference
        from record_generators import _maskgit_ref_config  # noqa: PLC0415

        r = ImageBert(_maskgit_ref_config("ViT", 768, 24, 16, 3072, 32)).eval()
        sd = seeded(r)
        z.load_state_dict({k: v for k, v in sd.items() if k in z.state_dict()}, strict=True)
    else:
        seeded(z)
    labels = list(range(1, batch + 1))
    s = dict(guidance_scale=4.5, guidance_decay="linear", randomize_temperature=9.5, softmax_temperature_annealing=True)

    def ref_fn():
        with routed_rng(0), torch.no_grad():
            return r.generate(torch.tensor(labels), num_sample_steps=8, **s)

    def zoo_fn():
        return z.generate(labels, seed=0, decode=False, num_steps=8, **s).tokens.ids

    rt, zt, (ra, za) = interleave(ref_fn if ref is not None else None, zoo_fn, reps)
    out = row(f"MaskGIT TiTok-L-32 (B={batch}, 8 steps, CFG)", "images/s", batch, rt, zt,
              bool(torch.equal(ra, za)) if ref is not None else None)
    # transformer FLOPs both run (linear CFG: step 0 unguided, B rows; steps 1..7 guided, 2B rows)
    d, f, layers, n = 768, 3072, 24, 33
    rows = batch + 7 * 2 * batch
    out["gflop"] = rows * n * layers * 2 * (4 * d * d + 2 * d * f + 2 * n * d) / 1e9
    out["cpu_s"] = (rt[0] if rt else None, zt[0])
    return out


def bench_rar(ref: Path | None, batch: int, seq: int, reps: int) -> dict:
    from zoo_plugins.rar.config import RARConfig
    from zoo_plugins.rar.model import RAR

    z = RAR(RARConfig(image_seq_len=seq)).eval()
    if ref is not None:
        sys.path.insert(0, str(ref))
        from modeling.rar import RAR as RefRAR  # noqa: PLC0415 - the reference
        from record_generators import _rar_ref_config  # noqa: PLC0415

        r = RefRAR(_rar_ref_config(768, 24, 16, 3072, image_seq_len=seq)).eval()
        r.set_random_ratio(0)
        sd = seeded(r)
        z.load_state_dict(sd, strict=True)
    else:
        seeded(z)
    labels = list(range(1, batch + 1))
    s = dict(guidance_scale=16.0, guidance_scale_pow=2.75, randomize_temperature=1.0)

    def ref_fn():
        with routed_rng(0), torch.no_grad():
            return r.generate(torch.tensor(labels), **s)

    def zoo_fn():
        return z.generate(labels, seed=0, decode=False, **s).tokens.ids

    rt, zt, (ra, za) = interleave(ref_fn if ref is not None else None, zoo_fn, reps)
    return row(f"RAR-B (B={batch}, {seq} tokens, CFG)", "tokens/s", batch * seq, rt, zt,
               bool(torch.equal(ra, za)) if ref is not None else None)


def bench_outetts(prompt_len: int, new: int, reps: int, dtype: torch.dtype = torch.float32, batch: int = 1) -> dict:
    from transformers import LlamaConfig, LlamaForCausalLM  # noqa: PLC0415 - the reference
    from record_generators import OUTETTS_CONFIG  # noqa: PLC0415

    from zoo.sampling import SamplerSettings, generate_ar
    from zoo_plugins.outetts.config import OuteTTSConfig
    from zoo_plugins.outetts.lm import LlamaLM

    r = LlamaForCausalLM(LlamaConfig(**OUTETTS_CONFIG)).eval()
    sd = seeded(r)
    z = LlamaLM(OuteTTSConfig(**OUTETTS_CONFIG)).eval()
    z.load_state_dict(sd, strict=True)
    r, z = r.to(dtype), z.to(dtype)
    prompt = torch.randint(3, 60000, (batch, prompt_len), generator=torch.Generator().manual_seed(0))
    settings = dict(temperature=0.1, repetition_penalty=1.1, top_k=50)

    def ref_fn():
        torch.manual_seed(0)
        with torch.no_grad():
            return r.generate(prompt, do_sample=True, max_new_tokens=new, min_new_tokens=new, top_p=1.0, pad_token_id=0, **settings)[:, prompt_len:]

    def zoo_fn():
        return generate_ar(z.step, prompt, new, z.new_cache(batch, prompt_len + new), generator=torch.Generator().manual_seed(0),
                           sampler=SamplerSettings(**settings)).ids

    rt, zt, (ra, za) = interleave(ref_fn, zoo_fn, reps)
    name = f"OuteTTS-0.1-350M LM (B={batch}, prompt {prompt_len}, {new} new, {str(dtype).split('.')[-1]})"
    return row(name, "tokens/s", batch * new, rt, zt, bool(torch.equal(ra, za)))


def read_bandwidth(gib: float = 1.0, reps: int = 5) -> float:
    """Streaming read bandwidth in GB/s (median of ``reps`` sums over a ``gib`` GiB fp32 buffer)."""
    buf = torch.ones(int(gib * 2**30) // 4)
    buf.sum()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        buf.sum()
        times.append(time.perf_counter() - t0)
    return buf.numel() * 4 / statistics.median(times) / 1e9


def gemm_gflops(m: int = 528, k: int = 768, n: int = 3072, reps: int = 20) -> float:
    """fp32 GEMM throughput (GFLOP/s, CPU time) at a MaskGIT-like shape, measured now."""
    return gemm_peak(m, k, n, reps)


def decode_bytes() -> list[tuple[str, float, float]]:
    """(model, zoo bytes, reference bytes) of fp32 weights read per decode step at batch 1."""
    d, f, L = 768, 3072, 24  # RAR-B
    block = 4 * d * d + 2 * d * f  # qkv, proj, fc1, fc2
    adaln = 6 * d * d
    rar_zoo = L * block + d * 1024 + (L * adaln + 2 * d * d) / 32  # adaLN computed once per 32 positions
    rar_ref = L * (block + adaln) + 2 * d * d + d * 1024
    h, hd, heads, kv, inter, layers, vocab = 896, 56, 16, 8, 3584, 20, 67584  # OuteTTS-0.1-350M
    llama = layers * (h * heads * hd * 2 + 2 * h * kv * hd + 3 * h * inter) + h * vocab
    return [("RAR-B (2 rows: CFG)", 4 * rar_zoo, 4 * rar_ref), ("OuteTTS-0.1-350M LM", 4 * llama, 4 * llama)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ref-1d", type=Path, help="checkout of bytedance/1d-tokenizer (MaskGIT, RAR references)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--maskgit-batch", type=int, default=2)
    ap.add_argument("--rar-batch", type=int, default=1)
    ap.add_argument("--rar-tokens", type=int, default=256)
    ap.add_argument("--tts-prompt", type=int, default=48)
    ap.add_argument("--tts-new", type=int, default=64)
    ap.add_argument("--tts-batch", type=int, default=1)
    ap.add_argument("--tts-dtype", default="float32", choices=["float32", "bfloat16"], help="both implementations in this dtype")
    ap.add_argument("--only", default="maskgit,rar,outetts")
    ap.add_argument("--roofline", action="store_true", help="print bytes/token and the bandwidth ceiling")
    add_results_option(ap)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    todo = set(args.only.split(","))
    rows = []
    have_ref = args.ref_1d is not None and (args.ref_1d / "modeling").is_dir()
    ref_1d = args.ref_1d if have_ref else None
    run = start("generators", title="Generators: MaskGIT, RAR, OuteTTS LM", kind="generator", threads=args.threads,
                settings=vars(args), reference=ref_1d, results=args.results)
    if "maskgit" in todo:
        rows.append(bench_maskgit(ref_1d, args.maskgit_batch, args.reps))
    if "rar" in todo:
        rows.append(bench_rar(ref_1d, args.rar_batch, args.rar_tokens, args.reps))
    if "outetts" in todo:
        try:
            rows.append(bench_outetts(args.tts_prompt, args.tts_new, args.reps, getattr(torch, args.tts_dtype), args.tts_batch))
        except ImportError as exc:
            rows.append({"model": "OuteTTS", "skipped": f"transformers not importable ({exc})"})
    print(f"\ntorch {torch.__version__}, {args.threads} thread(s), median of {args.reps} interleaved runs; "
          f"throughput from process CPU time (wall-time ratio alongside), load average {os.getloadavg()[0]:.1f}\n")
    print("| model | unit | reference | zoo | zoo / ref (CPU) | zoo / ref (wall) | ids equal |\n|---|---|---|---|---|---|---|")
    for r in rows:
        if "skipped" in r:
            print(f"| {r['model']} | skipped: {r['skipped']} | | | | | |")
        elif r["ref"] is None:
            print(f"| {r['model']} | {r['unit']} | not measured | {r['zoo']:.3g} | | | |")
        else:
            print(f"| {r['model']} | {r['unit']} | {r['ref']:.3g} | {r['zoo']:.3g} | {r['zoo'] / r['ref']:.2f}x | "
                  f"{r['ratio_wall']:.2f}x | {r['ids_equal']} |")

    roofline = None
    if args.roofline:
        peak = gemm_gflops()
        for r in rows:
            if "gflop" in r:
                ref_s, zoo_s = r["cpu_s"]
                ref_rate = f"{r['gflop'] / ref_s:.1f} GFLOP/s" if ref_s else "not measured"
                print(f"\n{r['model']}: {r['gflop']:.0f} GFLOP of transformer GEMMs per run (same in both); achieved "
                      f"{ref_rate} (reference), {r['gflop'] / zoo_s:.1f} GFLOP/s (zoo); "
                      f"fp32 GEMM peak measured in this run: {peak:.1f} GFLOP/s")
        bw = read_bandwidth()
        print(f"\nstreaming read bandwidth (1 thread, this run): {bw:.1f} GB/s\n")
        print("| model | weight bytes / decode step (zoo) | (reference) | ceiling steps/s at that bandwidth |\n|---|---|---|---|")
        roofline = {"gemm_gflops": peak, "read_gb_s": bw, "decode_bytes": []}
        for name, zb, rb in decode_bytes():
            print(f"| {name} | {zb / 1e6:.0f} MB | {rb / 1e6:.0f} MB | {bw * 1e9 / zb:.1f} |")
            roofline["decode_bytes"].append({"model": name, "zoo_mb": zb / 1e6, "ref_mb": rb / 1e6,
                                             "ceiling_steps_s": bw * 1e9 / zb})
    out = [{"model": r["model"], "op": "generate", "unit": r["unit"], "zoo_s": r["zoo_s"], "ref_s": r["ref_s"],
            "zoo_per_s": r["zoo"], "ref_per_s": r["ref"], "speedup": r["zoo"] / r["ref"] if r["ref"] else None,
            "wall_ratio": r["ratio_wall"], "ids_equal": r["ids_equal"]} for r in rows if "skipped" not in r]
    run.write(out, notes=["throughput from process CPU time; speedup = zoo throughput / reference throughput",
                          "weights random (seeded per key); same sampler settings and seeds on both sides"],
              extra={"skipped": [r for r in rows if "skipped" in r], "roofline": roofline})


if __name__ == "__main__":
    main()
