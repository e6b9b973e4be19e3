"""Visual-token reducers inside transformers VLMs: prefill cost and agreement with the full model.

Three shrunk VLMs with random weights and realistic token counts (CLIP ViT-L/14-336 geometry:
576 tokens per view): LLaVA-1.5 (one 336 px image, 576 visual tokens), LLaVA-NeXT (a 672 px
image as thumbnail + 2x2 crops: 2928 tokens) and Qwen2-VL (an image of 64x64 patches merged
2x2: 1024 tokens). Narrow towers and language models (widths 256 / 512, 4 layers) keep a run
under a few minutes on one core; the token counts, which drive the cost, are the real ones.

Per model and method at keep 1.0 / 0.5 / 0.25 / 0.1: the prefill (one forward with the image:
encode, reduce, language-model prefill), CPU seconds (``time.process_time``, medians of ``--reps``
rounds with every configuration interleaved, ratios to the unpatched model measured in the same
run), the language model's share, the peak resident memory above the pre-call level (Linux
``VmHWM`` after ``malloc_trim`` and ``clear_refs``), the prefill length, and the first ``--new`` greedy tokens compared
with the unpatched model's (random weights: this says how much the output moves, not accuracy).

    flock /tmp/zoo_heavy.lock python benchmarks/vlm_reducers.py --threads 1
    python benchmarks/vlm_reducers.py --plot docs/assets/figures/vlm_reducers.svg --table   # from the record
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)

import torch  # noqa: E402
from _image_codec import reset_peak, status_mib  # noqa: E402
from _record import RESULTS, add_results_option, start  # noqa: E402

KEEPS = (1.0, 0.5, 0.25, 0.1)
METHODS = {                                 # in run order (one record each, written when measured)
    "qwen2-vl": ("divprune", "mmtok", "hiprune", "tome", "dymu"),
    "llava-1.5": ("divprune", "mmtok", "hiprune", "tome", "evit", "dymu"),
    "llava-next": ("divprune", "mmtok", "hiprune", "tome", "dymu", "globalcom2"),
}
NOTES = [
    "random weights, shrunk widths/depths (towers 256 wide, language models 512 wide, 4 layers), real token counts",
    "prefill = one forward with the image (encode + reduce + LM prefill); CPU seconds, medians, interleaved; "
    "speed-ups against the unpatched model in the same run",
    "peak_above_mib: VmHWM above the RSS before the call (malloc_trim + clear_refs); first_tokens_equal: leading "
    "greedy tokens equal to the unpatched model's (random weights: movement, not accuracy)",
    "dymu at keep < 0.5 is not run (one DToMe step merges at most half of the tokens)",
]
IMAGE, PAD = 31999, 0


def _transformers():
    from zoo.compat.torchvision import ensure_torchvision

    ensure_torchvision()
    import transformers

    return transformers


def _llama(t):
    return t.LlamaConfig(hidden_size=512, intermediate_size=1376, num_hidden_layers=4, num_attention_heads=8,
                         num_key_value_heads=8, vocab_size=32000, max_position_embeddings=8192, pad_token_id=PAD)


def _clip(t):
    return t.CLIPVisionConfig(hidden_size=256, intermediate_size=1024, num_hidden_layers=4, num_attention_heads=4,
                              image_size=336, patch_size=14, projection_dim=256)


def _text(n: int, seed: int) -> list[int]:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(3, 30000, (n,), generator=g).tolist()


def build(name: str):
    """``(model, inputs)`` for one shrunk VLM (seeded random weights and inputs)."""
    t = _transformers()
    torch.manual_seed(0)
    if name == "llava-1.5":
        cfg = t.LlavaConfig(vision_config=_clip(t), text_config=_llama(t), image_token_id=IMAGE, vision_feature_layer=-2)
        model = t.LlavaForConditionalGeneration(cfg).eval()
        ids = _text(8, 1) + [IMAGE] * 576 + _text(40, 2)
        inputs = {"pixel_values": torch.randn(1, 3, 336, 336)}
    elif name == "llava-next":
        cfg = t.LlavaNextConfig(vision_config=_clip(t), text_config=_llama(t), image_token_id=IMAGE, vision_feature_layer=-2,
                                image_grid_pinpoints=[[336, 672], [672, 336], [672, 672]])
        model = t.LlavaNextForConditionalGeneration(cfg).eval()
        px, sizes = torch.randn(1, 5, 3, 336, 336), torch.tensor([[672, 672]])
        with torch.no_grad():
            n = int(model.model.get_image_features(pixel_values=px, image_sizes=sizes, return_dict=True).pooler_output[0].shape[0])
        ids = _text(8, 1) + [IMAGE] * n + _text(40, 2)
        inputs = {"pixel_values": px, "image_sizes": sizes}
    else:
        text = dict(_llama(t).to_dict(), rope_parameters={"rope_type": "default", "mrope_section": [8, 12, 12], "rope_theta": 1e6})
        text = {k: text[k] for k in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                                     "num_key_value_heads", "vocab_size", "max_position_embeddings", "pad_token_id",
                                     "rope_parameters")}
        cfg = t.Qwen2VLConfig(vision_config=dict(depth=4, embed_dim=256, hidden_size=512, num_heads=4, mlp_ratio=4, patch_size=14,
                                                 spatial_merge_size=2, temporal_patch_size=2, in_channels=3),
                              text_config=text, image_token_id=IMAGE, video_token_id=IMAGE - 1,
                              vision_start_token_id=IMAGE - 2, vision_end_token_id=IMAGE - 3)
        model = t.Qwen2VLForConditionalGeneration(cfg).eval()
        grid = torch.tensor([[1, 64, 64]])
        ids = _text(8, 1) + [IMAGE - 2] + [IMAGE] * 1024 + [IMAGE - 3] + _text(40, 2)
        inputs = {"pixel_values": torch.randn(64 * 64, 3 * 2 * 14 * 14), "image_grid_thw": grid}
        inputs["mm_token_type_ids"] = (torch.tensor([ids]) == IMAGE).int()
    inputs = {"input_ids": torch.tensor([ids]), "attention_mask": torch.ones(1, len(ids), dtype=torch.long), **inputs}
    return model, inputs


class LMTimer:
    """CPU seconds and input length of the language model's calls (hooks on ``language_model``)."""

    def __init__(self, model):
        lm = model.model.language_model
        self.cpu, self.length, self._t = 0.0, 0, 0.0
        self._h = [lm.register_forward_pre_hook(self._pre, with_kwargs=True), lm.register_forward_hook(self._post)]

    def _pre(self, module, args, kwargs):
        self.length = int(kwargs["inputs_embeds"].shape[1]) if kwargs.get("inputs_embeds") is not None else int(kwargs["input_ids"].shape[1])
        self._t = time.process_time()

    def _post(self, module, args, output):
        self.cpu += time.process_time() - self._t

    def remove(self):
        for h in self._h:
            h.remove()


def configs(name: str) -> list[tuple[str, float | None]]:
    out: list[tuple[str, float | None]] = [("none", None)]
    for method in METHODS[name]:
        for keep in KEEPS:
            if method == "dymu" and keep < 0.5:
                continue            # one DToMe step merges at most half of the tokens
            out.append((method, keep))
    return out


def _trim() -> None:
    """``malloc_trim(0)``: return freed heap pages to the OS (glibc; a no-op elsewhere)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def measure(model, inputs, method, keep, timer):
    import zoo

    handle = None if method is None or method == "none" else zoo.load(method).apply(model, keep=keep)
    try:
        _trim()                              # hand freed heap back, so the peak below is this call's
        rss = status_mib("VmRSS")
        reset_peak()
        timer.cpu = 0.0
        c0 = time.process_time()
        with torch.no_grad():
            model(**inputs)
        cpu = time.process_time() - c0
        peak = status_mib("VmHWM") - rss
        return cpu, timer.cpu, peak, timer.length
    finally:
        if handle is not None:
            handle.remove()


def generated(model, inputs, method, keep, new):
    import zoo

    handle = None if method == "none" else zoo.load(method).apply(model, keep=keep)
    try:
        with torch.no_grad():
            out = model.generate(**inputs, max_new_tokens=new, min_new_tokens=new, do_sample=False)
        return out[0, -new:].tolist()
    finally:
        if handle is not None:
            handle.remove()


def run_model(name: str, reps: int, new: int) -> list[dict]:
    model, inputs = build(name)
    timer = LMTimer(model)
    cfgs = configs(name)
    times: dict[tuple, list] = {c: [] for c in cfgs}
    for c in cfgs:                                  # warm-up
        measure(model, inputs, *c, timer)
    for _ in range(reps):
        for c in cfgs:                              # interleaved rounds
            times[c].append(measure(model, inputs, *c, timer))
    ref_ids = generated(model, inputs, "none", None, new)
    base_cpu = statistics.median(t[0] for t in times[("none", None)])
    base_lm = statistics.median(t[1] for t in times[("none", None)])
    rows = []
    for c in cfgs:
        cpu = statistics.median(t[0] for t in times[c])
        lm = statistics.median(t[1] for t in times[c])
        ids = ref_ids if c[0] == "none" else generated(model, inputs, *c, new)
        lead = next((i for i, (a, b) in enumerate(zip(ids, ref_ids)) if a != b), new)
        row = {"model": name, "config": "baseline" if c[0] == "none" else f"zoo {c[0]} keep={c[1]}",
               "method": c[0], "keep": c[1], "visual_tokens": int((inputs["input_ids"] == IMAGE).sum()),
               "prefill_tokens": times[c][-1][3], "prefill_cpu_s": round(cpu, 4), "speedup": round(base_cpu / cpu, 3),
               "lm_cpu_s": round(lm, 4), "lm_speedup": round(base_lm / lm, 3),
               "peak_above_mib": round(statistics.median(t[2] for t in times[c]), 1),
               "first_tokens_equal": lead, "tokens_equal_frac": round(sum(a == b for a, b in zip(ids, ref_ids)) / new, 3)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    timer.remove()
    return rows


def _rows(records: list[Path]) -> list[dict]:
    return [r for rec in records for r in json.loads(rec.read_text())["rows"]]


def plot(records: list[Path], out: Path) -> None:
    """Prefill speed-up against kept fraction, one panel per model (SVG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = _rows(records)
    models = list(dict.fromkeys(r["model"] for r in rows))
    fig, axes = plt.subplots(1, len(models), figsize=(4 * len(models), 3.2), sharey=True, squeeze=False)
    axes = axes[0]
    for ax, m in zip(axes, models):
        for method in dict.fromkeys(r["method"] for r in rows if r["model"] == m and r["method"] != "none"):
            pts = sorted((r["keep"], r["speedup"]) for r in rows if r["model"] == m and r["method"] == method)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=method)
        ax.axhline(1.0, color="grey", lw=0.8, ls=":")
        ax.set_title(f"{m} ({next(r['visual_tokens'] for r in rows if r['model'] == m)} visual tokens)", fontsize=9)
        ax.set_xlabel("keep (fraction of visual tokens)")
        ax.set_xscale("log")
        ax.set_xticks(list(KEEPS), [str(k) for k in KEEPS])
    axes[0].set_ylabel("prefill speed-up (CPU s ratio)")
    axes[-1].legend(fontsize=7)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="svg")
    print(f"wrote {out}")


def table(records: list[Path]) -> str:
    """The records as a Markdown table (the guide's)."""
    rows = _rows(records)
    new = json.loads(records[0].read_text())["settings"].get("new", 8)
    out = ["| Model (visual tokens) | Method | keep | Prefill tokens | Prefill CPU s | Speed-up | LM speed-up | "
           f"Peak above, MiB | Leading tokens equal (of {new}) |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        keep = "-" if r["keep"] is None else r["keep"]
        out.append(f"| {r['model']} ({r['visual_tokens']}) | {r['method']} | {keep} | {r['prefill_tokens']} | "
                   f"{r['prefill_cpu_s']:.3f} | {r['speedup']:.2f}x | {r['lm_speedup']:.2f}x | "
                   f"{r['peak_above_mib']:.0f} | {r['first_tokens_equal']} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=list(METHODS), choices=list(METHODS))
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--new", type=int, default=8, help="greedy tokens compared with the unpatched model")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--plot", type=Path, default=None, help="only draw the SVG plot from the record")
    p.add_argument("--table", action="store_true", help="only print the record as a Markdown table")
    add_results_option(p)
    args = p.parse_args(argv)
    folder = Path(args.results) if args.results else RESULTS
    records = [folder / f"vlm_reducers_{m.replace('-', '_').replace('.', '')}.json" for m in args.models]
    records = [r for r in records if r.exists()]
    if args.plot is not None or args.table:
        if args.plot is not None:
            plot(records, args.plot)
        if args.table:
            print(table(records))
        return
    torch.set_num_threads(args.threads)
    for m in args.models:                   # one record per model, written as soon as it is measured
        run = start(f"vlm_reducers_{m.replace('-', '_').replace('.', '')}", title=f"Visual-token reducers inside {m} (prefill)",
                    kind="reducer", threads=args.threads, settings={**vars(args), "model": m}, reference=None,
                    results=args.results)
        run.write(run_model(m, args.reps, args.new), notes=NOTES)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
