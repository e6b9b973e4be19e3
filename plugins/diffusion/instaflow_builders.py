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

from typing import Any, Mapping

from zoo.builders import Checkpoint, CheckpointFiles, ModelBuilder
from zoo.errors import ConfigError

from .builders import hf_from_pretrained, hf_tokenizer
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


class CLIPTextBuilder(ModelBuilder):
    name = "clip_text"
    config_class = dict

    def __init__(self) -> None:
        self._loaded: tuple[int, Any, Any] | None = None  # (id of the hf dict, encoder, tokenizer)

    def read_checkpoint(self, files: CheckpointFiles) -> Checkpoint:
        encoder, hf = hf_from_pretrained(files, "text_encoder", "clip_text_model", "CLIPTextModel", "CLIPTextConfig")
        tokenizer = hf_tokenizer(files, "tokenizer", "CLIPTokenizer", ("vocab.json",))
        self._loaded = (id(hf), encoder, tokenizer)
        return Checkpoint(state_dict=encoder.state_dict(), config={"hf": hf})

    def build(self, config: Mapping[str, Any]):
        from .instaflow import CLIPTextEncoder
        from .libs import transformers_module

        hf = config.get("hf") or {}
        if self._loaded is not None and self._loaded[0] == id(hf):
            _, encoder, tokenizer = self._loaded
            self._loaded = None
        else:
            tf = transformers_module()
            try:
                encoder = tf.CLIPTextModel(tf.CLIPTextConfig.from_dict(dict(hf)))
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"bad CLIP text config {hf!r}: {exc}") from None
            tokenizer = None
        return CLIPTextEncoder(encoder, tokenizer, max_length=int(config.get("max_length", 77)))

    def convert(self, state_dict: Mapping[str, Any], config: Any) -> Mapping[str, Any]:
        return {f"encoder.{k}": v for k, v in state_dict.items()}
