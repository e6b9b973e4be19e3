"""KV-eviction parity cases vs NVIDIA/kvpress (StreamingLLMPress, SnapKVPress): tiny random decoders
with weights from a per-key seed, a prompt prefilled under the press, then greedy decoding with
explicit positions (kvpress's pipeline loop). Recorded with kvpress on transformers 4.56.0 into
tests/fixtures/kv_cache/eviction.safetensors."""

from __future__ import annotations

import torch

ARCHS = {
    "llama": dict(vocab_size=128, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=256),
    "qwen2": dict(vocab_size=128, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=1, max_position_embeddings=256, use_sliding_window=False),
}
# name: arch, press name, press kwargs, prompt length
CASES = {
    "llama_streamingllm_05": ("llama", "streamingllm", dict(compression_ratio=0.5, n_sink=4), 48),
    "llama_snapkv_06": ("llama", "snapkv", dict(compression_ratio=0.6, window_size=8, kernel_size=5), 48),
    "qwen2_snapkv_03": ("qwen2", "snapkv", dict(compression_ratio=0.3, window_size=16, kernel_size=3), 40),
    "qwen2_streamingllm_075": ("qwen2", "streamingllm", dict(compression_ratio=0.75, n_sink=2), 40),
}
NEW_TOKENS = 12


def _init(key: str, shape: tuple[int, ...]) -> tuple[float, float]:
    if "norm" in key:
        return 1.0, 0.0
    if key.endswith(".bias"):
        return 0.0, 0.1
    return 0.0, 0.3 if ("q_proj" in key or "k_proj" in key) else 0.08


def tiny_lm(arch: str):
    """The tiny decoder with seeded weights (identical in the recorder's transformers and zoo's)."""
    from zoo.compat.torchvision import ensure_torchvision
    from zoo.testing.weights import seeded_state_dict

    ensure_torchvision()
    import transformers

    cfg_class, model_class = {"llama": ("LlamaConfig", "LlamaForCausalLM"), "qwen2": ("Qwen2Config", "Qwen2ForCausalLM")}[arch]
    model = getattr(transformers, model_class)(getattr(transformers, cfg_class)(**ARCHS[arch])).eval()
    manifest = {k: (tuple(v.shape), "float32") for k, v in model.state_dict().items()}
    model.load_state_dict(seeded_state_dict(manifest, seed=3, init=_init))
    return model


def prompt_ids(name: str) -> torch.Tensor:
    n = CASES[name][3]
    return torch.randint(0, 128, (1, n), generator=torch.Generator().manual_seed(sorted(CASES).index(name)))


def greedy(model, cache, prompt: torch.Tensor, new_tokens: int = NEW_TOKENS) -> torch.Tensor:
    """kvpress's loop: prefill prompt[:, :-1] with model.model (the press acts here), then the last
    prompt token and greedy steps at explicit positions."""
    context, question = prompt[:, :-1], prompt[:, -1:]
    with torch.no_grad():
        model.model(input_ids=context, past_key_values=cache)
        pos = torch.arange(context.shape[1], prompt.shape[1]).unsqueeze(0)
        out = model(input_ids=question, past_key_values=cache, position_ids=pos)
        ids = [out.logits[0, -1].argmax()]
        pos = pos[:, -1:] + 1
        for i in range(new_tokens - 1):
            out = model(input_ids=ids[-1].view(1, 1), past_key_values=cache, position_ids=pos + i)
            ids.append(out.logits[0, -1].argmax())
    return torch.stack(ids)
