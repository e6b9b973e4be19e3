"""Record parity fixtures for zoo's generators by running the reference implementations.

Nothing of the reference is copied: the reference is imported from the path given on the
command line (``--ref-1d``: a checkout of bytedance/1d-tokenizer), run on random weights
regenerated per key (``zoo.testing.seeded_state_dict``), and only data is written:
key/shape manifests at the published configs, the tiny configs, and the generated ids.

The reference's random draws are routed to the seeded global generator: ``torch.manual_seed``
before each call (zoo uses ``torch.Generator().manual_seed`` of the same seed; the streams are
the same), and ``torch.rand_like`` (used only to drop class labels with probability 0 or 1,
which needs no randomness) is replaced by a constant 0.5 so it consumes no draws.

Usage:
    python scripts/parity/record_generators.py --ref-1d /tmp/ref/1d-tokenizer [--only maskgit,rar]
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures"

# --------------------------------------------------------------------------- MaskGIT

MASKGIT_PUBLISHED = {
    # name: (model_type, hidden, layers, heads, inner, seq_len)
    "titok_l32": ("ViT", 768, 24, 16, 3072, 32),
    "titok_b64": ("ViT", 768, 24, 16, 3072, 64),
    "titok_s128": ("UViT", 1024, 20, 16, 4096, 128),
    "one_d_piece_256": ("ViT", 768, 24, 16, 3072, 256),
}
MASKGIT_TINY = {
    "bert": ("ViT", 64, 2, 4, 128, 16, 64, 10),
    "uvit": ("UViT", 64, 4, 4, 128, 16, 64, 10),
}
MASKGIT_SETTINGS = [
    dict(num_sample_steps=8, guidance_scale=4.5, guidance_decay="linear", guidance_scale_pow=3.0, randomize_temperature=9.5, softmax_temperature_annealing=True),
    dict(num_sample_steps=8, guidance_scale=6.9, guidance_decay="power-cosine", guidance_scale_pow=3.0, randomize_temperature=2.8, softmax_temperature_annealing=True),
    dict(num_sample_steps=5, guidance_scale=3.0, guidance_decay="constant", guidance_scale_pow=3.0, randomize_temperature=0.5, softmax_temperature_annealing=False),
    dict(num_sample_steps=4, guidance_scale=0.0, guidance_decay="constant", guidance_scale_pow=3.0, randomize_temperature=1.0, softmax_temperature_annealing=False),
]
LABELS = [1, 7, 3]
SEEDS = [0, 5]


def _maskgit_ref_config(model_type, hidden, layers, heads, inner, seq, codebook=4096, classes=1000):
    from omegaconf import OmegaConf

    return OmegaConf.create({"model": {
        "vq_model": {"codebook_size": codebook, "num_latent_tokens": seq},
        "generator": {"model_type": model_type, "hidden_size": hidden, "num_hidden_layers": layers,
                      "num_attention_heads": heads, "intermediate_size": inner, "dropout": 0.1, "attn_drop": 0.1,
                      "image_seq_len": seq, "condition_num_classes": classes},
    }})


@contextlib.contextmanager
def _routed_rng(seed: int):
    """Seed the global generator; make ``torch.rand_like`` draw nothing (0.5 everywhere)."""
    saved = torch.rand_like
    torch.manual_seed(seed)
    torch.rand_like = lambda t, dtype=None, **kw: torch.full_like(t, 0.5, dtype=dtype or t.dtype)
    try:
        yield
    finally:
        torch.rand_like = saved


def _seeded(model):
    from zoo.testing.weights import load_seeded

    return load_seeded(model)


def record_maskgit(ref: Path) -> None:
    sys.path.insert(0, str(ref))
    from modeling.maskgit import ImageBert, UViTBert  # noqa: PLC0415 - the reference, from --ref-1d

    from zoo.testing.weights import state_manifest
    from zoo.weights import no_init

    out = FIX / "maskgit"
    out.mkdir(parents=True, exist_ok=True)
    manifests = {}
    for name, (mt, hid, lay, hd, inner, seq) in MASKGIT_PUBLISHED.items():
        with no_init():
            m = (ImageBert if mt == "ViT" else UViTBert)(_maskgit_ref_config(mt, hid, lay, hd, inner, seq))
        manifests[name] = {k: [list(s), d] for k, (s, d) in state_manifest(m).items()}
        del m
    with gzip.open(out / "manifests.json.gz", "wt") as f:
        json.dump(manifests, f, sort_keys=True)

    cases = []
    for tiny, (mt, hid, lay, hd, inner, seq, codebook, classes) in MASKGIT_TINY.items():
        torch.manual_seed(0)
        model = (ImageBert if mt == "ViT" else UViTBert)(_maskgit_ref_config(mt, hid, lay, hd, inner, seq, codebook, classes)).eval()
        manifest = _seeded(model)
        # one forward on fixed ids for a continuous check
        g = torch.Generator().manual_seed(123)
        ids = torch.randint(0, codebook + 1, (2, seq), generator=g)
        with torch.no_grad():
            logits = model(ids, torch.tensor([1, 2]), cond_drop_prob=0.0)
        runs = []
        for si, s in enumerate(MASKGIT_SETTINGS):
            for seed in SEEDS:
                with _routed_rng(seed), torch.no_grad():
                    gen = model.generate(torch.tensor(LABELS), **s)
                runs.append({"setting": si, "seed": seed, "ids": gen.tolist()})
        cases.append({
            "name": tiny,
            "config": {"arch": "bert" if mt == "ViT" else "uvit", "hidden_size": hid, "num_hidden_layers": lay,
                       "num_attention_heads": hd, "intermediate_size": inner, "image_seq_len": seq,
                       "codebook_size": codebook, "condition_num_classes": classes},
            "manifest": {k: [list(s), d] for k, (s, d) in manifest.items()},
            "forward": {"ids": ids.tolist(), "labels": [1, 2], "logits_sum": float(logits.double().sum()),
                        "logits_head": logits[0, :2, :8].tolist()},
            "runs": runs,
        })
    (out / "cases.json").write_text(json.dumps({"labels": LABELS, "settings": MASKGIT_SETTINGS, "cases": cases}) + "\n")
    print(f"maskgit: wrote {out}")


VQGAN_TINY = dict(hidden_channels=32, channel_mult=[1, 2], num_res_blocks=1, z_channels=32, num_embeddings=64, resolution=32)


def record_vqgan(ref: Path) -> None:
    """The MaskGIT-VQGAN tokenizer: manifest at the released config; a tiny config's ids and
    decoded images (codebook set from sampled encoder outputs so ids depend on the input)."""
    sys.path.insert(0, str(ref))
    from omegaconf import OmegaConf
    from modeling.modules.maskgit_vqgan import Decoder, Encoder, VectorQuantizer  # noqa: PLC0415 - reference

    from safetensors.torch import save_file
    from zoo.testing.weights import seeded_state_dict, state_manifest
    from zoo.weights import no_init

    def build(c):
        conf = OmegaConf.create({"channel_mult": c["channel_mult"], "num_resolutions": len(c["channel_mult"]), "dropout": 0.0,
                                 "hidden_channels": c["hidden_channels"], "num_channels": 3, "num_res_blocks": c["num_res_blocks"],
                                 "resolution": c["resolution"], "z_channels": c["z_channels"]})
        m = torch.nn.Module()
        m.encoder, m.decoder = Encoder(conf), Decoder(conf)
        m.quantize = VectorQuantizer(c["num_embeddings"], c["z_channels"], 0.25)
        return m.eval()

    out = FIX / "titok"  # the tokenizer lives in the TiTok family
    with no_init(), torch.device("meta"):
        full = build(dict(hidden_channels=128, channel_mult=[1, 1, 2, 2, 4], num_res_blocks=2, z_channels=256, num_embeddings=1024, resolution=256))
    manifest_full = {k: [list(s), d] for k, (s, d) in state_manifest(full).items()}
    model = build(VQGAN_TINY)
    manifest = state_manifest(model)
    sd = seeded_state_dict(manifest)
    model.load_state_dict(sd)
    g = torch.Generator().manual_seed(7)
    images = torch.rand(2, 3, 32, 32, generator=g)  # the reference works in [0, 1]
    with torch.no_grad():
        z = model.encoder(torch.rand(4, 3, 32, 32, generator=g)).permute(0, 2, 3, 1).reshape(-1, VQGAN_TINY["z_channels"])
        pick = torch.randperm(z.shape[0], generator=g)[: VQGAN_TINY["num_embeddings"]]
        codebook = z[pick] + 1e-3 * torch.randn(len(pick), z.shape[1], generator=g)
        model.quantize.embedding.weight.copy_(codebook)
        latents = model.encoder(images)
        _, ids, _ = model.quantize(latents)
        decoded = model.decoder(model.quantize.get_codebook_entry(ids)).clamp(0.0, 1.0)
    save_file({"images": images, "latents": latents.contiguous(), "ids": ids.contiguous(), "decoded": decoded.contiguous(),
               "codebook": codebook.contiguous()}, str(out / "vqgan_tiny.safetensors"))
    (out / "vqgan.json").write_text(json.dumps({"config": VQGAN_TINY, "manifest": {k: [list(s), d] for k, (s, d) in manifest.items()},
                                                "manifest_released": manifest_full}) + "\n")
    print(f"vqgan: wrote {out}")


# OuteTTS-0.1-350M's config.json (hub revision 99536ba), and a tiny config of the same family
OUTETTS_CONFIG = dict(hidden_size=896, head_dim=56, intermediate_size=3584, num_attention_heads=16, num_hidden_layers=20,
                      num_key_value_heads=8, vocab_size=67584, rms_norm_eps=1e-6, rope_theta=10000.0, max_position_embeddings=4096,
                      tie_word_embeddings=False, bos_token_id=1, eos_token_id=2)
OUTETTS_TINY = dict(hidden_size=64, head_dim=16, intermediate_size=128, num_attention_heads=4, num_hidden_layers=2,
                    num_key_value_heads=2, vocab_size=300, rms_norm_eps=1e-6, rope_theta=10000.0, max_position_embeddings=256,
                    tie_word_embeddings=False, bos_token_id=1, eos_token_id=2)
OUTETTS_SETTINGS = [
    dict(temperature=0.1, repetition_penalty=1.1, top_k=50),   # OuteTTS v0.1 interface defaults (+ HF's top_k=50)
    dict(temperature=0.9, repetition_penalty=1.3, top_k=20),
    dict(temperature=1.0, repetition_penalty=1.0, top_k=0),
]


def record_outetts() -> None:
    """OuteTTS-0.1-350M's LM is transformers' LlamaForCausalLM; sampling is HF ``generate``."""
    from transformers import LlamaConfig, LlamaForCausalLM  # noqa: PLC0415 - the reference (pip transformers)

    from zoo.testing.weights import state_manifest
    from zoo.weights import no_init

    out = FIX / "outetts"
    out.mkdir(parents=True, exist_ok=True)
    with no_init(), torch.device("meta"):
        full = LlamaForCausalLM(LlamaConfig(**OUTETTS_CONFIG))
    published = {k: [list(s), d] for k, (s, d) in state_manifest(full).items()}
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**OUTETTS_TINY, attn_implementation="sdpa")).eval()
    manifest = _seeded(model)
    g = torch.Generator().manual_seed(11)
    prompt = torch.randint(3, OUTETTS_TINY["vocab_size"], (1, 9), generator=g)
    with torch.no_grad():
        logits = model(prompt).logits
    runs = []
    for si, s in enumerate(OUTETTS_SETTINGS):
        for seed in SEEDS:
            torch.manual_seed(seed)
            with torch.no_grad():
                gen = model.generate(prompt, do_sample=True, max_length=prompt.shape[1] + 24, top_p=1.0, pad_token_id=0, **s)
            runs.append({"setting": si, "seed": seed, "ids": gen[0, prompt.shape[1]:].tolist()})
    (out / "cases.json").write_text(json.dumps({
        "config": OUTETTS_TINY, "published_config": OUTETTS_CONFIG, "settings": OUTETTS_SETTINGS,
        "manifest": {k: [list(s), d] for k, (s, d) in manifest.items()}, "manifest_published": published,
        "prompt": prompt.tolist(), "logits_last": logits[0, -1, :16].tolist(), "logits_sum": float(logits.double().sum()),
        "runs": runs}) + "\n")
    print(f"outetts: wrote {out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ref-1d", type=Path, help="checkout of bytedance/1d-tokenizer")
    ap.add_argument("--only", default="maskgit,rar,vqgan,outetts", help="comma-separated: maskgit, rar, vqgan, outetts")
    args = ap.parse_args()
    torch.set_num_threads(1)
    todo = set(args.only.split(","))
    if "outetts" in todo:
        try:
            record_outetts()
        except ImportError as exc:
            print(f"outetts skipped: transformers is not importable ({exc})", file=sys.stderr)
    if args.ref_1d is None or not (args.ref_1d / "modeling").is_dir():
        print("no --ref-1d checkout given (or it lacks modeling/): maskgit/rar/vqgan not recorded", file=sys.stderr)
        return
    if "maskgit" in todo:
        record_maskgit(args.ref_1d)
    if "rar" in todo:
        record_rar(args.ref_1d)
    if "vqgan" in todo:
        record_vqgan(args.ref_1d)


RAR_TINY = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                image_seq_len=16, codebook_size=64, condition_num_classes=10)
RAR_SETTINGS = [
    dict(guidance_scale=16.0, guidance_scale_pow=2.75, randomize_temperature=1.0),
    dict(guidance_scale=4.0, guidance_scale_pow=0.0, randomize_temperature=1.02),
    dict(guidance_scale=0.0, guidance_scale_pow=0.0, randomize_temperature=0.7),
]


def _rar_ref_config(hidden_size, num_hidden_layers, num_attention_heads, intermediate_size, image_seq_len=256,
                    codebook_size=1024, condition_num_classes=1000):
    from omegaconf import OmegaConf

    return OmegaConf.create({"model": {
        "vq_model": {"codebook_size": codebook_size},
        "generator": {"hidden_size": hidden_size, "num_hidden_layers": num_hidden_layers,
                      "num_attention_heads": num_attention_heads, "intermediate_size": intermediate_size,
                      "dropout": 0.1, "attn_drop": 0.1, "image_seq_len": image_seq_len,
                      "condition_num_classes": condition_num_classes},
    }})


def record_rar(ref: Path) -> None:
    sys.path.insert(0, str(ref))
    from modeling.rar import RAR  # noqa: PLC0415 - the reference, from --ref-1d

    from zoo.testing.weights import state_manifest
    from zoo.weights import no_init

    out = FIX / "rar"
    out.mkdir(parents=True, exist_ok=True)
    sizes = {"rar_b": (768, 24, 3072), "rar_l": (1024, 24, 4096), "rar_xl": (1280, 32, 5120), "rar_xxl": (1408, 40, 6144)}
    manifests = {}
    for name, (d, depth, inner) in sizes.items():
        with no_init(), torch.device("meta"):
            m = RAR(_rar_ref_config(d, depth, 16, inner))
        manifests[name] = {k: [list(s), dt] for k, (s, dt) in state_manifest(m).items()}
    with gzip.open(out / "manifests.json.gz", "wt") as f:
        json.dump(manifests, f, sort_keys=True)

    torch.manual_seed(0)
    model = RAR(_rar_ref_config(**RAR_TINY)).eval()
    model.set_random_ratio(0)
    manifest = _seeded(model)
    g = torch.Generator().manual_seed(123)
    ids = torch.randint(0, RAR_TINY["codebook_size"], (2, RAR_TINY["image_seq_len"]), generator=g)
    labels = torch.tensor([1, 2])
    with torch.no_grad():
        cond = model.preprocess_condition(labels, cond_drop_prob=0.0)
        logits = model.forward_fn(ids, cond, is_sampling=True)  # raster order: [B, N + 1, K]
    runs = []
    for si, s in enumerate(RAR_SETTINGS):
        for seed in SEEDS:
            for kv in (True, False):
                with _routed_rng(seed), torch.no_grad():
                    gen = model.generate(torch.tensor(LABELS), kv_cache=kv, **s)
                runs.append({"setting": si, "seed": seed, "kv_cache": kv, "ids": gen.tolist()})
    record = {"config": RAR_TINY, "labels": LABELS, "settings": RAR_SETTINGS,
              "manifest": {k: [list(s), dt] for k, (s, dt) in manifest.items()},
              "forward": {"ids": ids.tolist(), "labels": labels.tolist(), "logits_sum": float(logits.double().sum()),
                          "logits_head": logits[0, :3, :8].tolist(), "logits_last": logits[1, -2, :8].tolist()},
              "runs": runs}
    (out / "cases.json").write_text(json.dumps(record) + "\n")
    print(f"rar: wrote {out}")


if __name__ == "__main__":
    main()
