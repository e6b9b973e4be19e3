"""KV-cache reducers (GEAR, KIVI, StreamingLLM, SnapKV) and LLMLingua-2 prompt compression.

KV part (``--part kv``): a shrunk Llama (random weights from a per-key seed; 4 layers, width 256,
4 query / 2 KV heads of 64) reads a random prompt of ``--context`` tokens, then decodes ``--new``
tokens *teacher-forced* on the plain cache's greedy tokens. Per method: the KV memory the cache
holds after the prompt + ``--new`` tokens (bytes of codes, statistics, outliers, factors and the
full-precision tail; a ``DynamicCache``'s tensors), decoding speed (tokens per CPU second,
``time.process_time``, medians of ``--reps`` rounds with every method interleaved), the prefill
CPU seconds, and next-token agreement: the share of the ``--new`` steps whose argmax equals the
plain cache's (random weights: how much the output moves, not accuracy).

LLMLingua-2 part (``--part lingua``): compression ratio at rate 0.33 / 0.5 and CPU seconds per
1 000 words of a generated meeting transcript, for classifiers of the published sizes with
random weights (XLM-RoBERTa-large, mBERT-base; a small tokenizer trained here); tokens counted by
a words-and-punctuation stand-in for GPT-3.5's tokenizer (tiktoken's files cannot be fetched
here). ``--reference DIR`` adds the ``llmlingua`` package (a folder holding it) on the same
classifier and text, interleaved.

    flock /tmp/zoo_heavy.lock python benchmarks/kv_reducers.py --part kv --context 2048 --threads 1
    flock /tmp/zoo_heavy.lock python benchmarks/kv_reducers.py --part kv --context 8192 --threads 1
    flock /tmp/zoo_heavy.lock python benchmarks/kv_reducers.py --part lingua --classifier bert --threads 1
    flock /tmp/zoo_heavy.lock python benchmarks/kv_reducers.py --part lingua --classifier xlm-roberta --threads 1
    python benchmarks/kv_reducers.py --table --plot docs/assets/figures/kv_reducers.svg   # from the records
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _record import RESULTS, add_results_option, start  # noqa: E402

LM = dict(vocab_size=1024, hidden_size=256, intermediate_size=512, num_hidden_layers=4, num_attention_heads=4,
          num_key_value_heads=2, max_position_embeddings=16384)
# label: (card, overrides for cache() / apply())
METHODS = {
    "plain": (None, {}),
    "kivi-4": ("kivi", dict(bits=4)),
    "kivi-2": ("kivi", dict(bits=2)),
    "gear-4": ("gear", dict(bits=4)),
    "gear-2": ("gear", dict(bits=2)),
    "gear-kcvt-4": ("gear.kcvt", dict(bits=4)),
    "streamingllm-0.5": ("streamingllm", dict(compression_ratio=0.5)),
    "snapkv-0.5": ("snapkv", dict(compression_ratio=0.5)),
}
KV_NOTES = [
    "shrunk Llama (4 layers, width 256, 4 query / 2 KV heads of 64), random weights from a per-key seed, random prompt",
    "decoding teacher-forced on the plain cache's greedy tokens; tokens/s = tokens per CPU second (1 thread), medians over rounds",
    "agreement = share of decoding steps whose argmax equals the plain cache's; logits_rel_err / cosine = median over steps of "
    "|logits - plain| / |plain| and of their cosine (random weights: movement, not accuracy); speedup = decode tokens/s over the plain cache's",
    "GEAR/KIVI settings from the cards (group 64, streaming gap 64; GEAR rank 2 / prefill rank 4, 2% outliers); bits as labelled",
    "StreamingLLM / SnapKV evict half of the prompt after prefill (n_sink 4; window 64, kernel 5)",
]


def _transformers():
    from zoo.compat.torchvision import ensure_torchvision

    ensure_torchvision()
    import transformers

    return transformers


def _init(key: str, shape: tuple[int, ...]) -> tuple[float, float]:
    if "norm" in key:
        return 1.0, 0.0
    return 0.0, 0.06 if ("q_proj" in key or "k_proj" in key) else 0.05


def shrunk_llama():
    from zoo.testing.weights import seeded_state_dict

    tf = _transformers()
    model = tf.LlamaForCausalLM(tf.LlamaConfig(**LM)).eval()
    manifest = {k: (tuple(v.shape), "float32") for k, v in model.state_dict().items()}
    model.load_state_dict(seeded_state_dict(manifest, seed=0, init=_init))
    return model


def kv_bytes(cache) -> int:
    if hasattr(cache, "nbytes"):
        return cache.nbytes()
    return sum(layer.keys.numel() * layer.keys.element_size() + layer.values.numel() * layer.values.element_size()
               for layer in cache.layers)


def run_method(model, label: str, prompt: torch.Tensor, forced: torch.Tensor) -> dict:
    import zoo

    tf = _transformers()
    card, overrides = METHODS[label]
    handle = None
    if card is None:
        cache = tf.DynamicCache()
    elif card in ("streamingllm", "snapkv"):
        cache = tf.DynamicCache()
        handle = zoo.load(card).apply(model, **overrides)
    else:
        cache = zoo.load(card).cache(model, **overrides)
    logits = []
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        t0 = time.process_time()
        logits.append(model(prompt, past_key_values=cache).logits[0, -1])
        t1 = time.process_time()
        for i, tok in enumerate(forced[:-1]):
            pos = torch.tensor([[prompt.shape[1] + i]])
            logits.append(model(tok.view(1, 1), past_key_values=cache, position_ids=pos).logits[0, -1])
        t2 = time.process_time()
    if handle is not None:
        handle.remove()
    stacked = torch.stack(logits)
    return {"prefill_cpu_s": t1 - t0, "decode_cpu_s": t2 - t1, "kv_bytes": kv_bytes(cache), "argmax": stacked.argmax(-1).tolist(),
            "logits": stacked}


def bench_kv(context: int, new: int, reps: int) -> list[dict]:
    model = shrunk_llama()
    prompt = torch.randint(0, LM["vocab_size"], (1, context), generator=torch.Generator().manual_seed(context))
    plain = run_method(model, "plain", prompt, torch.zeros(new, dtype=torch.long))  # greedy tokens of the plain cache
    forced = torch.tensor(plain["argmax"])
    runs: dict[str, list[dict]] = {m: [] for m in METHODS}
    for _ in range(reps):
        for label in METHODS:  # interleaved rounds
            runs[label].append(run_method(model, label, prompt, forced))
    base = runs["plain"][0]
    rows = []
    for label, rs in runs.items():
        decode = statistics.median(r["decode_cpu_s"] for r in rs)
        agree = sum(a == b for a, b in zip(rs[0]["argmax"], base["argmax"])) / len(base["argmax"])
        rel = ((rs[0]["logits"] - base["logits"]).norm(dim=-1) / base["logits"].norm(dim=-1)).median().item()
        cos = torch.nn.functional.cosine_similarity(rs[0]["logits"], base["logits"], dim=-1).median().item()
        card, overrides = METHODS[label]
        config = "plain DynamicCache" if card is None else f"zoo {card} " + " ".join(f"{k}={v}" for k, v in overrides.items())
        rows.append({"model": f"shrunk Llama ({context}-token prompt)", "config": config, "method": label, "context": context, "new_tokens": new, "kv_mib": rs[0]["kv_bytes"] / 2**20,
                     "kv_vs_plain": rs[0]["kv_bytes"] / base["kv_bytes"], "prefill_cpu_s": statistics.median(r["prefill_cpu_s"] for r in rs),
                     "decode_tokens_per_cpu_s": (new - 1) / decode if decode > 0 else None, "next_token_agreement": agree,
                     "logits_rel_err": rel, "logits_cosine": cos})
    plain_speed = rows[0]["decode_tokens_per_cpu_s"]
    for row in rows:  # decoding speed relative to the plain cache (the Benchmarks page's reducer column)
        row["speedup"] = row["decode_tokens_per_cpu_s"] / plain_speed if plain_speed and row["decode_tokens_per_cpu_s"] else None
        print(f"{row['method']:18s} ctx {context:5d}  KV {row['kv_mib']:7.2f} MiB ({row['kv_vs_plain']:.3f}x)  "
              f"prefill {row['prefill_cpu_s']:.2f} s  decode {row['decode_tokens_per_cpu_s']:.1f} tok/CPU-s  "
              f"agree {row['next_token_agreement']:.2f}  logits rel err {row['logits_rel_err']:.3f}", flush=True)
    return rows


# ---------------------------------------------------------------- LLMLingua-2

def _lingua_folder(kind: str, root: Path) -> Path:
    """The published architecture (random weights) with the small offline tokenizer, in the hub layout."""
    from safetensors.torch import save_file

    from tests.plugins.llmlingua2.tiny import write_model

    import zoo

    folder = write_model(root / kind, kind)
    card = "llmlingua2" if kind == "xlm-roberta" else "llmlingua2.bert_base_multilingual_cased_meetingbank"
    hf = dict(zoo.get_card(card).config["hf"])
    cfg = json.loads((folder / "config.json").read_text())
    cfg.update({k: v for k, v in hf.items() if k not in ("id2label", "label2id")})
    (folder / "config.json").write_text(json.dumps(cfg))
    torch.manual_seed(0)
    model = zoo.load(card, pretrained=False, hf=cfg)
    save_file({k[len("classifier."):]: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    return folder


def _reference_compressor(ref_dir: str, folder: Path):
    import types

    from tests.plugins.llmlingua2.tiny import count_tokens

    if ref_dir not in sys.path:
        sys.path.insert(0, ref_dir)
    tk = types.ModuleType("tiktoken")
    tk.encoding_for_model = lambda name: types.SimpleNamespace(encode=lambda text: [0] * count_tokens(text))
    sys.modules.setdefault("tiktoken", tk)
    sys.modules.setdefault("nltk", types.ModuleType("nltk"))
    from llmlingua import PromptCompressor

    return PromptCompressor(model_name=str(folder), device_map="cpu", use_llmlingua2=True)


LINGUA = {"xlm-roberta": "llmlingua2", "bert": "llmlingua2.bert_base_multilingual_cased_meetingbank"}


def bench_lingua(reps: int, reference: str | None, words: int, kinds: list[str]) -> list[dict]:
    import tempfile

    import zoo
    from tests.plugins.llmlingua2.tiny import count_tokens, prompt

    text = prompt(words // 9, 123)
    n_words = len(text.split())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in kinds:
            card = LINGUA[kind]
            folder = _lingua_folder(kind, Path(tmp))
            # the reference recognises the model type by its name
            named = folder.parent / f"llmlingua-2-{'xlm-roberta-large' if kind == 'xlm-roberta' else 'bert-base-multilingual-cased'}-bench"
            folder.rename(named)
            model = zoo.load(card, weights=named)
            ref = _reference_compressor(reference, named) if reference else None
            for rate in (0.33, 0.5):
                zt, rt, out = [], [], None
                for _ in range(reps):
                    t = time.process_time()
                    out = model.compress(text, rate=rate, token_counter=count_tokens)
                    zt.append(time.process_time() - t)
                    if ref is not None:
                        t = time.process_time()
                        r = ref.compress_prompt_llmlingua2([text], rate=rate)
                        rt.append(time.process_time() - t)
                        same = r["compressed_prompt"] == out.text
                row = {"model": model.card.name, "config": f"zoo {model.card.name} rate={rate}", "classifier": model.card.name, "rate": rate, "words": n_words, "ratio": out.ratio, "kept_words": sum(out.kept),
                       "zoo_cpu_s_per_1k_words": statistics.median(zt) * 1000 / n_words}
                if ref is not None:
                    row.update(reference_cpu_s_per_1k_words=statistics.median(rt) * 1000 / n_words,
                               speedup=statistics.median(rt) / statistics.median(zt), same_output=same)
                rows.append(row)
                print(row, flush=True)
    return rows


# ---------------------------------------------------------------- table and plot from the records

def _records(folder: Path) -> tuple[list[dict], list[dict]]:
    kv = []
    for path in sorted(folder.glob("kv_reducers_ctx*.json"), key=lambda p: int(p.stem.split("ctx")[1])):
        kv += json.loads(path.read_text())["rows"]
    lingua = []
    for kind in LINGUA:
        path = folder / f"kv_reducers_llmlingua2_{kind.replace('-', '_')}.json"
        lingua += json.loads(path.read_text())["rows"] if path.exists() else []
    return kv, lingua


def table(folder: Path) -> str:
    kv, lingua = _records(folder)
    lines = ["| Method | Context | KV MiB | KV vs plain | Decode tok / CPU-s | Prefill CPU s | Next-token agreement | Logits rel. error |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in kv:
        lines.append(f"| {r['method']} | {r['context']} | {r['kv_mib']:.2f} | {r['kv_vs_plain']:.3f}x | "
                     f"{r['decode_tokens_per_cpu_s']:.1f} | {r['prefill_cpu_s']:.2f} | {r['next_token_agreement']:.2f} | "
                     f"{r['logits_rel_err']:.3f} |")
    if lingua:
        ref = "reference_cpu_s_per_1k_words" in lingua[0]
        lines += ["", "| Classifier | rate | Ratio | CPU s / 1k words (zoo)" + (" | llmlingua | speed-up | same text" if ref else "") + " |",
                  "| --- | --- | --- | ---" + (" | --- | --- | ---" if ref else "") + " |"]
        for r in lingua:
            extra = (f" | {r['reference_cpu_s_per_1k_words']:.2f} | {r['speedup']:.2f}x | {r['same_output']}" if ref else "")
            lines.append(f"| {r['classifier']} | {r['rate']} | {r['ratio']:.2f}x | {r['zoo_cpu_s_per_1k_words']:.2f}{extra} |")
    return "\n".join(lines)


def plot(folder: Path, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kv, _ = _records(folder)
    fig, ax = plt.subplots(figsize=(7, 4))
    contexts = sorted({r["context"] for r in kv})
    markers = dict(zip(contexts, "os^D"))
    for r in kv:
        ax.scatter(r["kv_vs_plain"], r["next_token_agreement"], marker=markers[r["context"]], s=40)
        ax.annotate(r["method"], (r["kv_vs_plain"], r["next_token_agreement"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    for c in contexts:
        ax.scatter([], [], marker=markers[c], color="gray", label=f"context {c}")
    ax.set_xlabel("KV memory relative to a plain DynamicCache")
    ax.set_ylabel("next-token agreement with the plain cache")
    ax.set_title("KV-cache reducers on a shrunk random Llama")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="svg", metadata={"Date": None})
    print(f"wrote {out}")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--part", choices=["kv", "lingua"], default="kv")
    p.add_argument("--context", type=int, default=2048, help="prompt tokens (KV part)")
    p.add_argument("--new", type=int, default=32, help="decoded tokens (KV part)")
    p.add_argument("--words", type=int, default=1000, help="words of the prompt (LLMLingua-2 part)")
    p.add_argument("--classifier", choices=list(LINGUA), default="bert", help="LLMLingua-2 classifier (one record each)")
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--reference", default=None, help="folder holding the llmlingua package (LLMLingua-2 part)")
    p.add_argument("--table", action="store_true", help="only print the records as Markdown tables")
    p.add_argument("--plot", type=Path, default=None, help="only draw the SVG plot from the records")
    add_results_option(p)
    args = p.parse_args(argv)
    folder = Path(args.results) if args.results else RESULTS
    if args.table or args.plot is not None:
        if args.table:
            print(table(folder))
        if args.plot is not None:
            plot(folder, args.plot)
        return
    torch.set_num_threads(args.threads)
    if args.reference:  # before transformers is imported: it looks for accelerate (the package needs it) once
        sys.path.insert(0, str(Path(args.reference).resolve()))
    if args.part == "kv":
        run = start(f"kv_reducers_ctx{args.context}", title=f"KV-cache reducers, shrunk Llama, {args.context}-token prompt",
                    kind="reducer", threads=args.threads, settings=vars(args), reference=None, results=args.results)
        run.write(bench_kv(args.context, args.new, args.reps), notes=KV_NOTES)
    else:
        run = start(f"kv_reducers_llmlingua2_{args.classifier.replace('-', '_')}", kind="reducer", threads=args.threads,
                    title=f"LLMLingua-2 prompt compression ({LINGUA[args.classifier]} size, random weights)",
                    settings=vars(args), reference=args.reference, results=args.results)
        run.write(bench_lingua(args.reps, args.reference, args.words, [args.classifier]),
                  notes=["classifiers of the published sizes with random weights and a small offline tokenizer; "
                         "tokens counted by a words-and-punctuation stand-in for GPT-3.5's tokenizer",
                         "CPU seconds (1 thread) per 1000 words, medians; the reference is llmlingua 0.2.2 on the same files"])


if __name__ == "__main__":
    main()
