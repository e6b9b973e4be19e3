"""OuteTTS-0.1-350M's config: the LM's ``config.json`` (LlamaForCausalLM) plus the v0.1
interface's sampler defaults and the WavTokenizer it pairs with.

Example:
    >>> from_hf_config({"hidden_size": 896, "num_hidden_layers": 20, "model_type": "llama"})["num_hidden_layers"]
    20
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional

__all__ = ["OuteTTSConfig", "from_hf_config"]


@dataclass
class OuteTTSConfig:
    # LlamaForCausalLM (OuteAI/OuteTTS-0.1-350M config.json)
    hidden_size: int = 896
    head_dim: Optional[int] = 56
    intermediate_size: int = 3584
    num_attention_heads: int = 16
    num_hidden_layers: int = 20
    num_key_value_heads: int = 8
    vocab_size: int = 67584
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    max_position_embeddings: int = 4096
    tie_word_embeddings: bool = False
    bos_token_id: int = 1
    eos_token_id: int = 2
    # outetts v0.1 InterfaceHF.generate defaults (HF generate: do_sample, top_k 50 by default)
    temperature: float = 0.1
    repetition_penalty: float = 1.1
    repetition_window: Optional[int] = None  # None: the whole context, as HF's processor
    top_k: int = 50
    top_p: float = 1.0
    min_p: float = 0.0
    max_length: int = 4096
    # the codec: 75 tokens/s WavTokenizer (outetts v0.1 used wavtokenizer_large_speech_320_24k.ckpt)
    tokenizer: str = "wavtokenizer.large_speech_75"
    sample_rate: int = 24000
    num_audio_codes: int = 4096


_HF_FIELDS = {
    "hidden_size", "head_dim", "intermediate_size", "num_attention_heads", "num_hidden_layers", "num_key_value_heads",
    "vocab_size", "rms_norm_eps", "rope_theta", "max_position_embeddings", "tie_word_embeddings", "bos_token_id", "eos_token_id",
}
_HF_IGNORED = {
    "_name_or_path", "architectures", "attention_bias", "attention_dropout", "device_map", "hidden_act", "initializer_range",
    "mlp_bias", "model_type", "pretraining_tp", "rope_scaling", "torch_dtype", "transformers_version", "use_cache", "pad_token_id",
}


def from_hf_config(tree: Mapping[str, Any]) -> dict[str, Any]:
    """Map a Llama ``config.json`` onto :class:`OuteTTSConfig`; features zoo's Llama does not
    implement (biases, rope scaling, non-SiLU MLPs) are errors naming the key."""
    from zoo.errors import ConfigError

    if tree.get("model_type", "llama") != "llama":
        raise ConfigError(f"config.json model_type {tree.get('model_type')!r}: OuteTTS-0.1 is a llama model")
    for key, ok in (("attention_bias", False), ("mlp_bias", False), ("rope_scaling", None), ("hidden_act", "silu"), ("pretraining_tp", 1)):
        if key in tree and tree[key] != ok:
            raise ConfigError(f"config.json {key}={tree[key]!r} is not supported (zoo's OuteTTS LM expects {ok!r})")
    unknown = sorted(set(tree) - _HF_FIELDS - _HF_IGNORED)
    if unknown:
        raise ConfigError(f"unknown config.json key(s) {unknown} for the OuteTTS LM")
    return {k: tree[k] for k in _HF_FIELDS if k in tree}
