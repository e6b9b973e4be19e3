"""Builders of the InstaFlow / 2-Rectified Flow releases (diffusers pipeline folders in SD 1.5's layout):

* ``instaflow``: ``unet/config.json`` (``UNet2DConditionModel``) and
  ``unet/diffusion_pytorch_model.safetensors``, strictly. The repo's ``scheduler/`` (SD 1.5's
  PNDM config) is not read: the rectified-flow loop uses only its ``init_noise_sigma`` of 1;
  ``safety_checker/`` and ``feature_extractor/`` are not used (zoo runs no safety checker). The
  text encoder and VAE are other cards, loaded when first needed.
* ``clip_text``: ``text_encoder/`` (transformers ``CLIPTextModel``: ``config.json`` read as data,
  ``model.safetensors`` through ``from_pretrained`` on the local folder; every missing or
  unexpected key is a CheckpointError) and ``tokenizer/`` (``vocab.json`` + ``merges.txt``, read
  by transformers' ``CLIPTokenizer``).

The VAE is a ``diffusers_vae`` card over the same repo.

Example:
    >>> InstaFlowBuilder().name, CLIPTextBuilder().name
    ('instaflow', 'clip_text')
"""

from __future__ import annotations

from typing import Any

from zoo.builders import Checkpoint, CheckpointFiles, ModelBuilder

from .builders import TextEncoderBuilder, hf_from_pretrained, hf_tokenizer
from .layout import component_config, component_state

__all__ = ["InstaFlowBuilder", "CLIPTextBuilder"]


class InstaFlowBuilder(ModelBuilder):
    name = "instaflow"

    def __init__(self) -> None:
        from .instaflow import InstaFlowConfig

        self.config_class = InstaFlowConfig

    def needed_dependencies(self, files: CheckpointFiles, card: Any) -> set[str]:
        """Nothing at load: the text encoder and VAE load when a prompt is first encoded / decoded."""
        return set()

    def read_checkpoint(self, files: CheckpointFiles) -> Checkpoint:
        return Checkpoint(state_dict=component_state(files.paths, "unet", state_prefix="unet."),
                          config={"unet": component_config(files.paths, "unet", "UNet2DConditionModel")})

    def build(self, config: Any):
        from .instaflow import InstaFlow

        return InstaFlow(config)

    def finalize(self, model, files, config):
        """A model built with ``pretrained=False`` loads random components too (no download)."""
        model.components_pretrained = files is not None
        return model


class CLIPTextBuilder(TextEncoderBuilder):
    name = "clip_text"
    model_class, hf_config_class, what, default_max_length = "CLIPTextModel", "CLIPTextConfig", "CLIP text", 77

    def read_checkpoint(self, files: CheckpointFiles) -> Checkpoint:
        encoder, hf = hf_from_pretrained(files, "text_encoder", "clip_text_model", "CLIPTextModel", "CLIPTextConfig")
        tokenizer = hf_tokenizer(files, "tokenizer", "CLIPTokenizer", ("vocab.json",))
        return self.loaded(hf, encoder, tokenizer)

    def wrap(self, encoder: Any, tokenizer: Any, max_length: int):
        from .instaflow import CLIPTextEncoder

        return CLIPTextEncoder(encoder, tokenizer, max_length=max_length)
