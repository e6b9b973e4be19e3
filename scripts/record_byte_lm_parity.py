"""Record next-byte probabilities of the official byte-level conversion code on a tiny
SentencePiece LM, as a parity fixture for zoo.text.byte_lm.

The reference (facebookresearch/Exact-Byte-Level-Probabilities-from-Tokenized-LMs, CC-BY-NC)
is run from a local checkout given as the first argument, as an oracle only; nothing of it is
copied. The LM is a tiny Llama with weights regenerated from key names
(``zoo.testing.seeded_state_dict``), the tokenizer a SentencePiece model trained by
``zoo_plugins.text_tokenizers.testing``; both are rebuilt by the test from the fixture.

Usage: python scripts/record_byte_lm_parity.py /tmp/ref/ebp [tests/fixtures/text_tokenizers]
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

import torch

PROMPTS = ["the quick", "of the la", "The Court h", "Section 2(", "café ", "the lazy dog"]
LM_CONFIG = {"vocab_size": 330, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
             "num_key_value_heads": 2, "head_dim": 8, "bos_token_id": 1, "eos_token_id": 2, "max_position_embeddings": 128,
             "tie_word_embeddings": False}


def main(ref: str, out_dir: str = "tests/fixtures/text_tokenizers") -> None:
    from zoo.compat.torchvision import ensure_torchvision

    ensure_torchvision()
    import transformers.cache_utils as cu

    if not hasattr(cu, "HybridCache"):  # imported (for Gemma-2 only) by the reference's utils; gone in transformers 5
        cu.HybridCache = type("HybridCache", (), {})
    from zoo_plugins.text_tokenizers.testing import sentencepiece_model

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sp_path = sentencepiece_model(out / "byte_lm_sp.model", vocab_size=LM_CONFIG["vocab_size"])
    model_dir = Path(tempfile.mkdtemp())
    from zoo_plugins.text_tokenizers.testing import seeded_llama

    seeded_llama(LM_CONFIG).save_pretrained(model_dir)
    shutil.copy(sp_path, model_dir / "tokenizer.model")
    (model_dir / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "LlamaTokenizer", "add_bos_token": True, "add_eos_token": False, "legacy": False,
        "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}))
    sys.path.insert(0, str(Path(ref) / "src"))
    from byte_prediction_model import BytePredLLM

    ref_model = BytePredLLM(str(model_dir), "cpu")
    cases = []
    for prompt in PROMPTS:
        with torch.no_grad():
            # the reference spells spaces as SentencePiece's U+2581 (three bytes), as its generate() does
            pred, _ = ref_model.prob_next_byte(list(prompt.replace(" ", "\u2581").encode("utf-8")))
        cases.append({"prompt": prompt, "probs": [float(p) for p in pred.double().tolist()]})
        print(prompt, len(pred), float(pred[:256].sum()))
    record = {"note": "the reference's byte alphabet spells a space as U+2581 (bytes e2 96 81): its entry 0xE2 is zoo's 0x20 "
                      "plus zoo's 0xE2; probs has 256 byte entries followed by the reference's extra ids",
              "reference": "facebookresearch/Exact-Byte-Level-Probabilities-from-Tokenized-LMs (CC-BY-NC, run as an oracle)",
              "lm_config": LM_CONFIG, "init": "zoo.testing.seeded_state_dict, norms 1, embed/lm_head std 0.5, rest std 0.1",
              "tokenizer": sp_path.name, "cases": cases}
    (out / "byte_lm_parity.json").write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
