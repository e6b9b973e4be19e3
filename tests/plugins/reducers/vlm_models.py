"""Tiny random transformers VLMs built offline (no download) and prompts for them.

Each builder returns ``(model, inputs)`` where ``inputs`` are the keyword arguments a processor
would give ``generate``: batch of 2, left padding, and per class the hard parts: two images in one
prompt (LLaVA, Qwen2-VL), any-res crops of different sizes (LLaVA-NeXT), 3-D rotary ids (Qwen2-VL).
"""

from __future__ import annotations

import pytest
import torch

IMAGE, VIDEO, V_START, V_END, PAD = 99, 98, 97, 96, 0


def transformers():
    from zoo.compat.torchvision import ensure_torchvision

    ensure_torchvision()
    return pytest.importorskip("transformers")


def _clip(layers: int = 3):
    return transformers().CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=layers,
                                           num_attention_heads=4, image_size=32, patch_size=8, projection_dim=32)


def _llama():
    return transformers().LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                                      num_key_value_heads=2, vocab_size=100, max_position_embeddings=512,
                                      pad_token_id=PAD, bos_token_id=1, eos_token_id=2)


def _left_pad(rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.tensor([[PAD] * (width - len(r)) + r for r in rows])
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
    return ids, mask


def llava(seed: int = 0):
    """LLaVA-1.5 shape: CLIP (4x4 patches + CLS) -> MLP projector -> Llama; 16 tokens per image."""
    t = transformers()
    torch.manual_seed(seed)
    cfg = t.LlavaConfig(vision_config=_clip(), text_config=_llama(), image_token_id=IMAGE, vision_feature_layer=-2,
                        projector_hidden_act="gelu")
    model = t.LlavaForConditionalGeneration(cfg).eval()
    ids, mask = _left_pad([[1, 5] + [IMAGE] * 16 + [7, 8, 9],
                           [1, 5, 6] + [IMAGE] * 16 + [10] + [IMAGE] * 16 + [7, 8, 9, 11]])   # 1 and 2 images
    px = torch.randn(3, 3, 32, 32)
    return model, {"input_ids": ids, "attention_mask": mask, "pixel_values": px}


def llava_next(seed: int = 0):
    """LLaVA-NeXT shape: any-res (thumbnail + up to 2x2 crops of 32 px) with spatial unpadding and newlines."""
    t = transformers()
    torch.manual_seed(seed)
    cfg = t.LlavaNextConfig(vision_config=_clip(), text_config=_llama(), image_token_id=IMAGE, vision_feature_layer=-2,
                            image_grid_pinpoints=[[32, 64], [64, 32], [64, 64]])
    model = t.LlavaNextForConditionalGeneration(cfg).eval()
    sizes = torch.tensor([[40, 90], [70, 60]])                       # (H, W): a wide and a tall image
    px = torch.randn(2, 5, 3, 32, 32)
    with torch.no_grad():
        n = [int(f.shape[0]) for f in model.model.get_image_features(pixel_values=px, image_sizes=sizes,
                                                                       return_dict=True).pooler_output]
    ids, mask = _left_pad([[1, 5] + [IMAGE] * n[0] + [7, 8], [1, 5, 6] + [IMAGE] * n[1] + [7, 8, 9]])
    return model, {"input_ids": ids, "attention_mask": mask, "pixel_values": px, "image_sizes": sizes}


def qwen2_vl(seed: int = 0):
    """Qwen2-VL shape: ViT with 2x2 patch merger, M-RoPE (sections 2/1/1); two images in one prompt."""
    t = transformers()
    torch.manual_seed(seed)
    cfg = t.Qwen2VLConfig(
        vision_config=dict(depth=2, embed_dim=32, hidden_size=32, num_heads=4, mlp_ratio=2, patch_size=4,
                           spatial_merge_size=2, temporal_patch_size=2, in_channels=3),
        text_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, vocab_size=100, pad_token_id=PAD, bos_token_id=1, eos_token_id=2,
                         rope_parameters={"rope_type": "default", "mrope_section": [2, 1, 1], "rope_theta": 10000.0}),
        image_token_id=IMAGE, video_token_id=VIDEO, vision_start_token_id=V_START, vision_end_token_id=V_END)
    model = t.Qwen2VLForConditionalGeneration(cfg).eval()
    grid = torch.tensor([[1, 4, 6], [1, 4, 4], [1, 6, 4]])           # 6, 4 and 6 tokens after the 2x2 merge
    n = (grid.prod(-1) // 4).tolist()
    px = torch.randn(int(grid.prod(-1).sum()), 3 * 2 * 4 * 4)

    def image(k):
        return [V_START] + [IMAGE] * k + [V_END]
    ids, mask = _left_pad([[1, 5] + image(n[0]) + [7, 8] + image(n[1]) + [9], [1, 5, 6] + image(n[2]) + [7, 8, 9, 11]])
    types = (ids == IMAGE).int()
    return model, {"input_ids": ids, "attention_mask": mask, "pixel_values": px, "image_grid_thw": grid,
                   "mm_token_type_ids": types}


BUILDERS = {"llava": llava, "llava_next": llava_next, "qwen2_vl": qwen2_vl}

#: which reducers run on which class (keep for the reduced run)
METHODS = {
    "llava": {"divprune": 0.25, "mmtok": 0.25, "hiprune": 0.5, "dymu": 0.5, "tome": 0.25, "evit": 0.25},
    "llava_next": {"divprune": 0.25, "mmtok": 0.25, "hiprune": 0.5, "dymu": 0.5, "tome": 0.25, "globalcom2": 0.25},
    "qwen2_vl": {"divprune": 0.5, "mmtok": 0.5, "hiprune": 0.5, "dymu": 0.5, "tome": 0.5},
}


def qwen2_5_vl(seed: int = 0):
    """Qwen2.5-VL (windowed vision attention, same M-RoPE surface), on Qwen2-VL's prompt."""
    t = transformers()
    torch.manual_seed(seed)
    cfg = t.Qwen2_5_VLConfig(
        vision_config=dict(depth=2, hidden_size=32, out_hidden_size=32, num_heads=4, intermediate_size=64, patch_size=4,
                           spatial_merge_size=2, temporal_patch_size=2, in_channels=3, window_size=16,
                           fullatt_block_indexes=[1]),
        text_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, vocab_size=100, pad_token_id=PAD, bos_token_id=1, eos_token_id=2,
                         rope_parameters={"rope_type": "default", "mrope_section": [2, 1, 1], "rope_theta": 10000.0}),
        image_token_id=IMAGE, video_token_id=VIDEO, vision_start_token_id=V_START, vision_end_token_id=V_END)
    model = t.Qwen2_5_VLForConditionalGeneration(cfg).eval()
    return model, qwen2_vl(seed)[1]
