"""Offline stand-ins for OuteTTS-0.1-350M's release files, for tests and demos.

The real ``tokenizer.json`` (and the weights) live on the Hugging Face Hub. These helpers build
files with the same *format*:

* :func:`standin_tokenizer` -- a byte-level BPE ``tokenizers.Tokenizer`` trained on a few
  sentences, with OuteTTS-0.1's special tokens (``<|im_start|>``, ``<|im_end|>``,
  ``<|text_start|>`` ... ``<|text_sep|>``), the 4100 audio-code tokens ``<|0|>`` ... ``<|4099|>``
  and the word-duration tokens ``<|t_0.00|>`` ... ``<|t_5.00|>``, each one id;
* :func:`write_standin_release` -- a hub-shaped folder (``model.safetensors``, ``config.json``,
  ``tokenizer.json``) holding a tiny random Llama LM that uses that tokenizer.

What they do *not* reproduce: the real vocabulary, its token ids (only ``<|im_start|>`` = 1 and
``<|im_end|>`` = 2, the config's bos/eos ids, are placed on purpose) and of course the weights.

Example:
    >>> tok = standin_tokenizer()
    >>> tok.encode("<|im_start|><|123|><|t_0.42|>", add_special_tokens=False).tokens
    ['<|im_start|>', '<|123|>', '<|t_0.42|>']
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

__all__ = ["SPECIAL_TOKENS", "standin_tokenizer", "tiny_lm_config", "write_standin_release"]

# <|endoftext|> = 0, <|im_start|> = 1 (bos), <|im_end|> = 2 (eos): the config's token ids
SPECIAL_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|text_start|>", "<|text_end|>", "<|audio_start|>",
    "<|audio_end|>", "<|code_start|>", "<|code_end|>", "<|text_sep|>",
]
_CORPUS = [
    "hello world this is a small corpus for a stand in tokenizer",
    "the quick brown fox jumps over the lazy dog",
    "text to speech with audio codes and word durations",
    "one two three four five six seven eight nine ten",
]


def standin_tokenizer(num_codes: int = 4100, max_duration: float = 5.0, bpe_vocab: int = 320):
    """A ``tokenizers.Tokenizer`` in OuteTTS-0.1's token format (see the module docstring).

    Example:
        >>> tok = standin_tokenizer()
        >>> tok.token_to_id("<|im_start|>"), tok.token_to_id("<|im_end|>")
        (1, 2)
    """
    try:
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers  # noqa: PLC0415
    except ImportError:
        raise ImportError("the OuteTTS stand-in tokenizer needs the `tokenizers` package: pip install tokenizers") from None

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=bpe_vocab, special_tokens=SPECIAL_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_CORPUS, trainer)
    steps = int(round(max_duration * 100))
    tok.add_tokens([f"<|{i}|>" for i in range(num_codes)] + [f"<|t_{i / 100:.2f}|>" for i in range(steps + 1)])
    return tok


def tiny_lm_config(vocab_size: int, **overrides: Any) -> dict[str, Any]:
    """A transformers-style Llama ``config.json`` dict for a tiny random LM.

    Example:
        >>> tiny_lm_config(5000)["num_hidden_layers"]
        2
    """
    cfg = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 32, "head_dim": 8,
        "intermediate_size": 64, "num_attention_heads": 4, "num_key_value_heads": 2, "num_hidden_layers": 2,
        "vocab_size": vocab_size, "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "max_position_embeddings": 512,
        "tie_word_embeddings": False, "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu",
        "attention_bias": False, "mlp_bias": False, "rope_scaling": None, "torch_dtype": "float32",
    }
    cfg.update(overrides)
    return cfg


def write_standin_release(folder: str | Path, *, seed: int = 0, config: Optional[dict[str, Any]] = None) -> Path:
    """Write ``model.safetensors`` (seeded tiny Llama, transformers' key names), ``config.json``
    and a stand-in ``tokenizer.json`` into ``folder`` -- the layout of ``OuteAI/OuteTTS-0.1-350M``.

    Example:
        >>> import tempfile
        >>> d = write_standin_release(tempfile.mkdtemp())
        >>> sorted(p.name for p in d.iterdir())
        ['config.json', 'model.safetensors', 'tokenizer.json']
    """
    from safetensors.torch import save_file  # noqa: PLC0415

    from zoo.testing.weights import seeded_state_dict, state_manifest  # noqa: PLC0415

    from .config import OuteTTSConfig, from_hf_config  # noqa: PLC0415
    from .lm import LlamaLM  # noqa: PLC0415

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tok = standin_tokenizer()
    tok.save(str(folder / "tokenizer.json"))
    vocab = -(-tok.get_vocab_size() // 64) * 64  # padded to a multiple of 64, as released LMs are
    cfg = config or tiny_lm_config(vocab)
    (folder / "config.json").write_text(json.dumps(cfg, indent=2))
    lm = LlamaLM(OuteTTSConfig(**from_hf_config(cfg)))
    state = seeded_state_dict(state_manifest(lm), seed=seed)
    save_file({k: v.contiguous() for k, v in state.items()}, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return folder
