"""Tiny transformers configs of every family, for tests and benchmarks on random weights.

``tiny_hf_config(family)`` is a ``config.json``-style dict small enough to run in milliseconds;
``zoo.load(card, pretrained=False, hf=tiny_hf_config(family))`` builds it.

Example:
    >>> tiny_hf_config("dac")["n_codebooks"]
    4
"""

from __future__ import annotations

from typing import Any

__all__ = ["tiny_hf_config", "TINY_RATE"]

TINY_RATE = 8000

_HUBERT = {"model_type": "hubert", "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32,
           "conv_dim": [8, 8], "conv_stride": [4, 2], "conv_kernel": [8, 2], "num_feat_extract_layers": 2,
           "num_conv_pos_embeddings": 8, "num_conv_pos_embedding_groups": 2, "layerdrop": 0.0}
_W2V_BERT = {"model_type": "wav2vec2-bert", "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
             "intermediate_size": 32, "output_hidden_size": 16, "layerdrop": 0.0, "conv_depthwise_kernel_size": 3}


def tiny_hf_config(family: str, *, stereo_chunked: bool = False) -> dict[str, Any]:
    """A small random-weight config of ``family`` (``stereo_chunked``: EnCodec 48 kHz's layout)."""
    if family == "encodec":
        cfg = {"model_type": "encodec", "sampling_rate": TINY_RATE, "hidden_size": 16, "num_filters": 4,
               "upsampling_ratios": [4, 2], "codebook_size": 64, "codebook_dim": 16, "num_lstm_layers": 1,
               "target_bandwidths": [6.0, 12.0, 24.0]}
        if stereo_chunked:
            cfg.update(audio_channels=2, normalize=True, chunk_length_s=0.05, overlap=0.01)
        return cfg
    if family == "dac":
        return {"model_type": "dac", "sampling_rate": TINY_RATE, "encoder_hidden_size": 4, "downsampling_ratios": [2, 4],
                "upsampling_ratios": [4, 2], "decoder_hidden_size": 16, "n_codebooks": 4, "codebook_size": 64,
                "codebook_dim": 4, "hidden_size": 16, "hop_length": 8}
    if family == "mimi":
        return {"model_type": "mimi", "sampling_rate": TINY_RATE, "hidden_size": 16, "num_filters": 4, "upsampling_ratios": [4, 2],
                "codebook_size": 64, "codebook_dim": 16, "num_quantizers": 4, "vector_quantization_hidden_dimension": 16,
                "upsample_groups": 16, "num_hidden_layers": 1, "intermediate_size": 32, "num_attention_heads": 2,
                "num_key_value_heads": 2, "head_dim": 8, "sliding_window": 16, "frame_rate": TINY_RATE / 16}
    if family == "xcodec":
        return {"model_type": "xcodec", "sample_rate": TINY_RATE, "codebook_size": 64, "codebook_dim": 32,
                "target_bandwidths": [6.0, 12.0, 24.0],
                "acoustic_model_config": {"model_type": "dac", "encoder_hidden_size": 4, "downsampling_ratios": [4, 2],
                                          "upsampling_ratios": [2, 4], "decoder_hidden_size": 16, "hidden_size": 16,
                                          "sampling_rate": TINY_RATE, "hop_length": 8},
                "semantic_model_config": dict(_HUBERT)}
    if family == "xcodec2":
        return {"model_type": "xcodec2", "sampling_rate": TINY_RATE, "hidden_size": 32, "intermediate_size": 32,
                "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 2, "head_dim": 16,
                "encoder_hidden_size": 2, "downsampling_ratios": [2, 4, 5, 8], "quantization_dim": 48,
                "quantization_levels": [4, 4, 4], "semantic_model_config": dict(_W2V_BERT)}
    raise KeyError(family)
