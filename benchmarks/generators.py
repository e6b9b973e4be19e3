"""Side-by-side generation speed: zoo vs the reference implementations, same weights, same
sampler settings, same seeds, measured in one run (interleaved repetitions, medians).

* MaskGIT (TiTok-L-32 ImageBert, 24x768, 32 tokens, 8 steps, linear CFG): images/s.
* RAR-B (24x768, CFG as 2B, 256 tokens): tokens/s.
* OuteTTS-0.1-350M's LM (Llama 20x896): tokens/s against transformers' ``generate``.

Weights are random (regenerated per key); the reference runs with its random draws routed to
the same seed, so the benchmark also reports whether the generated ids are equal.

Usage:
    python benchmarks/generators.py --ref-1d /tmp/ref/1d-tokenizer [--threads 1] [--reps 3]
    (transformers must be importable for the MaskGIT and OuteTTS references; parts whose
    reference is missing are skipped.)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts" / "parity"))


from record_generators import _routed_rng as routed_rng  # noqa: E402 - the recorder's RNG routing, shared


def seeded(model):
    from zoo.testing.weights import seeded_state_dict, state_manifest

    sd = seeded_state_dict(state_manifest(model))
    model.load_state_dict(sd, strict=True)
    return sd


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def interleave(ref_fn, zoo_fn, reps: int):
    ref_fn(), zoo_fn()  # warm-up
    rt, zt, outs = [], [], None
    for _ in range(reps):
        a, ra = timed(ref_fn)
        b, za = timed(zoo_fn)
        rt.append(a), zt.append(b)
        outs = (ra, za)
    return statistics.median(rt), statistics.median(zt), outs


def bench_maskgit(ref: Path, batch: int, reps: int) -> dict:
    sys.path.insert(0, str(ref))
    from modeling.maskgit import ImageBert  # noqa: PLC0415 - the reference
    from record_generators import _maskgit_ref_config  # noqa: PLC0415

    from zoo_plugins.maskgit.config import MaskGITConfig
    from zoo_plugins.maskgit.model import build_generator

    r = ImageBert(_maskgit_ref_config("ViT", 768, 24, 16, 3072, 32)).eval()
    sd = seeded(r)
    z = build_generator(MaskGITConfig(image_seq_len=32)).eval()
    z.load_state_dict({k: v for k, v in sd.items() if k in z.state_dict()}, strict=True)
    labels = list(range(1, batch + 1))
    s = dict(guidance_scale=4.5, guidance_decay="linear", randomize_temperature=9.5, softmax_temperature_annealing=True)

    def ref_fn():
        with routed_rng(0), torch.no_grad():
            return r.generate(torch.tensor(labels), num_sample_steps=8, **s)

    def zoo_fn():
        return z.generate(labels, seed=0, decode=False, num_steps=8, **s).tokens.ids

    rt, zt, (ra, za) = interleave(ref_fn, zoo_fn, reps)
    return {"model": f"MaskGIT TiTok-L-32 (B={batch}, 8 steps)", "unit": "images/s", "ref": batch / rt, "zoo": batch / zt,
            "ids_equal": bool(torch.equal(ra, za))}


def bench_rar(ref: Path, batch: int, seq: int, reps: int) -> dict:
    sys.path.insert(0, str(ref))
    from modeling.rar import RAR as RefRAR  # noqa: PLC0415 - the reference
    from record_generators import _rar_ref_config  # noqa: PLC0415

    from zoo_plugins.rar.config import RARConfig
    from zoo_plugins.rar.model import RAR

    r = RefRAR(_rar_ref_config(768, 24, 16, 3072, image_seq_len=seq)).eval()
    r.set_random_ratio(0)
    sd = seeded(r)
    z = RAR(RARConfig(image_seq_len=seq)).eval()
    z.load_state_dict(sd, strict=True)
    labels = list(range(1, batch + 1))
    s = dict(guidance_scale=16.0, guidance_scale_pow=2.75, randomize_temperature=1.0)

    def ref_fn():
        with routed_rng(0), torch.no_grad():
            return r.generate(torch.tensor(labels), **s)

    def zoo_fn():
        return z.generate(labels, seed=0, decode=False, **s).tokens.ids

    rt, zt, (ra, za) = interleave(ref_fn, zoo_fn, reps)
    n = batch * seq
    return {"model": f"RAR-B (B={batch}, {seq} tokens, CFG)", "unit": "tokens/s", "ref": n / rt, "zoo": n / zt,
            "ids_equal": bool(torch.equal(ra, za))}


def bench_outetts(prompt_len: int, new: int, reps: int, dtype: torch.dtype = torch.float32) -> dict:
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
    prompt = torch.randint(3, 60000, (1, prompt_len), generator=torch.Generator().manual_seed(0))
    settings = dict(temperature=0.1, repetition_penalty=1.1, top_k=50)

    def ref_fn():
        torch.manual_seed(0)
        with torch.no_grad():
            return r.generate(prompt, do_sample=True, max_new_tokens=new, min_new_tokens=new, top_p=1.0, pad_token_id=0, **settings)[:, prompt_len:]

    def zoo_fn():
        return generate_ar(z.step, prompt, new, z.new_cache(1, prompt_len + new), generator=torch.Generator().manual_seed(0),
                           sampler=SamplerSettings(**settings)).ids

    rt, zt, (ra, za) = interleave(ref_fn, zoo_fn, reps)
    return {"model": f"OuteTTS-0.1-350M LM (prompt {prompt_len}, {new} new, {str(dtype).split('.')[-1]})", "unit": "tokens/s", "ref": new / rt, "zoo": new / zt,
            "ids_equal": bool(torch.equal(ra, za))}


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
    ap.add_argument("--tts-dtype", default="float32", choices=["float32", "bfloat16"], help="both implementations in this dtype")
    ap.add_argument("--only", default="maskgit,rar,outetts")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    todo = set(args.only.split(","))
    rows = []
    have_ref = args.ref_1d is not None and (args.ref_1d / "modeling").is_dir()
    if "maskgit" in todo:
        rows.append(bench_maskgit(args.ref_1d, args.maskgit_batch, args.reps) if have_ref else {"model": "MaskGIT", "skipped": "no --ref-1d"})
    if "rar" in todo:
        rows.append(bench_rar(args.ref_1d, args.rar_batch, args.rar_tokens, args.reps) if have_ref else {"model": "RAR", "skipped": "no --ref-1d"})
    if "outetts" in todo:
        try:
            rows.append(bench_outetts(args.tts_prompt, args.tts_new, args.reps, getattr(torch, args.tts_dtype)))
        except ImportError as exc:
            rows.append({"model": "OuteTTS", "skipped": f"transformers not importable ({exc})"})
    print(f"\ntorch {torch.__version__}, {args.threads} thread(s), median of {args.reps} interleaved runs\n")
    print("| model | unit | reference | zoo | zoo / ref | ids equal |\n|---|---|---|---|---|---|")
    for r in rows:
        if "skipped" in r:
            print(f"| {r['model']} | skipped: {r['skipped']} | | | | |")
        else:
            print(f"| {r['model']} | {r['unit']} | {r['ref']:.3g} | {r['zoo']:.3g} | {r['zoo'] / r['ref']:.2f}x | {r['ids_equal']} |")


if __name__ == "__main__":
    main()
