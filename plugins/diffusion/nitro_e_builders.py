"""Builders of the Nitro-E release files: files -> zoo model, strictly.

* ``nitro_e``: one ``Nitro-E-*.safetensors`` (the E-MMDiT state dict in the reference's key names,
  no config file: the card holds the config) and, for the GRPO cards, the PEFT LoRA folder
  ``ckpt_grpo_*/{adapter_config.json, adapter_model.safetensors}``, merged into the weights at
  load as the reference's ``PeftModel.merge_and_unload()`` does (:func:`merge_lora`; plain LoRA on
  linear / 1x1-conv layers; DoRA, per-module rank/alpha patterns and trained extra modules are refused).
* ``llama_text``: a Llama checkpoint folder (``config.json`` with ``model_type: llama``,
  ``model.safetensors``, ``tokenizer.json`` + jsons): transformers' ``LlamaModel.from_pretrained``
  on the local folder (the causal LM's ``model.*`` keys; ``lm_head`` is tied and not stored) and
  ``PreTrainedTokenizerFast``; every missing or unexpected key is a CheckpointError.
* ``dc_ae``: a diffusers ``AutoencoderDC`` folder (``config.json`` + ``diffusion_pytorch_model.safetensors``).

Every json is read as data; nothing named in a file is imported.

Example:
    >>> NitroEBuilder().name, LlamaTextBuilder().name, DCAEBuilder().name
    ('nitro_e', 'llama_text', 'dc_ae')
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from zoo.builders import Checkpoint, CheckpointFiles, ModelBuilder
from zoo.errors import CheckpointError, ConfigError

from .builders import TextEncoderBuilder
from .layout import read_json
from .nitro_e import NitroEConfig

__all__ = ["NitroEBuilder", "LlamaTextBuilder", "DCAEBuilder", "merge_lora"]

_ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


def merge_lora(state: Mapping[str, Any], config: Mapping[str, Any], adapter: Mapping[str, Any]) -> dict[str, Any]:
    """``state`` with a PEFT LoRA adapter merged in: ``W += (alpha / r) B A`` (``alpha / sqrt(r)``
    with ``use_rslora``) for every ``base_model.model.<name>.lora_A/B.weight`` pair, computed in
    float32 and cast back to ``W``'s dtype (PEFT's ``merge_and_unload``).

    Example:
        >>> import torch
        >>> w = {"lin.weight": torch.zeros(2, 3)}
        >>> a = {"base_model.model.lin.lora_A.weight": torch.ones(1, 3), "base_model.model.lin.lora_B.weight": torch.ones(2, 1)}
        >>> merge_lora(w, {"r": 1, "lora_alpha": 2}, a)["lin.weight"].tolist()
        [[2.0, 2.0, 2.0], [2.0, 2.0, 2.0]]
    """

    if config.get("peft_type", "LORA") != "LORA" or config.get("use_dora") or config.get("fan_in_fan_out"):
        raise CheckpointError(f"only plain LoRA adapters merge (got peft_type={config.get('peft_type')!r}, use_dora={config.get('use_dora')}, "
                              f"fan_in_fan_out={config.get('fan_in_fan_out')})")
    if config.get("rank_pattern") or config.get("alpha_pattern") or config.get("modules_to_save"):
        raise CheckpointError("this LoRA adapter sets rank_pattern / alpha_pattern / modules_to_save, which zoo does not merge")
    r, alpha = int(config.get("r", 8)), float(config.get("lora_alpha", 8))
    scale = alpha / (r ** 0.5) if config.get("use_rslora") else alpha / r
    out = dict(state)
    names = set()
    for key in adapter:
        if not (key.startswith("base_model.model.") and (key.endswith(".lora_A.weight") or key.endswith(".lora_B.weight"))):
            raise CheckpointError(f"unexpected key {key!r} in the LoRA adapter: only base_model.model.<layer>.lora_A/B.weight merge")
        names.add(key[len("base_model.model."):].rsplit(".lora_", 1)[0])
    for name in sorted(names):
        a, b = adapter.get(f"base_model.model.{name}.lora_A.weight"), adapter.get(f"base_model.model.{name}.lora_B.weight")
        w = out.get(f"{name}.weight")
        if a is None or b is None:
            raise CheckpointError(f"the LoRA adapter holds only one of lora_A / lora_B for {name}")
        if w is None:
            raise CheckpointError(f"the LoRA adapter targets {name}, which the base weights do not have: another model's adapter")
        delta = b.float().flatten(1) @ a.float().flatten(1)
        if delta.numel() != w.numel() or (w.dim() > 2 and any(s != 1 for s in w.shape[2:])):
            raise CheckpointError(f"LoRA for {name}: {tuple(b.shape)} x {tuple(a.shape)} does not fit the weight {tuple(w.shape)}")
        out[f"{name}.weight"] = (w.float() + scale * delta.view(w.shape)).to(w.dtype)
    return out


class NitroEBuilder(ModelBuilder):
    """``Nitro-E-*.safetensors`` (+ the GRPO LoRA folder) -> :class:`~.nitro_e.NitroE`."""

    name = "nitro_e"
    config_class = NitroEConfig

    def needed_dependencies(self, files: CheckpointFiles, card: Any) -> set[str]:
        """Nothing at load: the text encoder and the VAE load when a prompt is first encoded / decoded."""
        return set()

    def read_checkpoint(self, files: CheckpointFiles) -> Checkpoint:
        from zoo.weights import load_safetensors

        base = [p for n, p in files.paths.items() if n.endswith(".safetensors") and Path(n).name not in _ADAPTER_FILES]
        if len(base) != 1:
            raise CheckpointError(f"expected one Nitro-E-*.safetensors among {sorted(files.paths)} ({files.origin}), found {len(base)}")
        state, _ = load_safetensors(base[0])
        adapter = {Path(n).name: p for n, p in files.paths.items() if Path(n).name in _ADAPTER_FILES}
        if adapter:
            if len(adapter) != 2:
                raise CheckpointError(f"a LoRA adapter needs both {_ADAPTER_FILES}, got {sorted(adapter)} ({files.origin})")
            state = merge_lora(state, read_json(adapter["adapter_config.json"], "LoRA adapter config"),
                               load_safetensors(adapter["adapter_model.safetensors"])[0])
        return Checkpoint(state_dict={f"transformer.{k}": v for k, v in state.items()})

    def build(self, config: NitroEConfig):
        from .nitro_e import NitroE

        try:
            return NitroE(config)
        except TypeError as exc:
            raise ConfigError(f"bad Nitro-E transformer config {config.transformer!r}: {exc}") from None

    def finalize(self, model, files, config):
        model.components_pretrained = files is not None
        return model


def _folder(files: CheckpointFiles, needs: str) -> Path:
    found = [p for n, p in files.paths.items() if Path(n).name == needs]
    if not found:
        raise CheckpointError(f"no {needs} among {sorted(files.paths)} ({files.origin})")
    return found[0].parent


class LlamaTextBuilder(TextEncoderBuilder):
    """A Llama checkpoint folder -> :class:`~.nitro_e.LlamaTextEncoder` (Nitro-E's text encoder)."""

    name = "llama_text"
    model_class, hf_config_class, what, default_max_length = "LlamaModel", "LlamaConfig", "Llama", 128

    def read_checkpoint(self, files: CheckpointFiles) -> Checkpoint:
        from .libs import transformers_module

        folder = _folder(files, "config.json")
        hf = read_json(folder / "config.json", "Llama config")
        if hf.get("model_type") != "llama":
            raise CheckpointError(f"{folder / 'config.json'} has model_type {hf.get('model_type')!r}, not 'llama': another model's files")
        tf = transformers_module()
        try:
            encoder, info = tf.LlamaModel.from_pretrained(str(folder), local_files_only=True, trust_remote_code=False, output_loading_info=True)
            tokenizer = tf.PreTrainedTokenizerFast.from_pretrained(str(_folder(files, "tokenizer.json")), local_files_only=True)
        except (OSError, ValueError, RuntimeError) as exc:
            raise CheckpointError(f"transformers could not load the Llama in {folder}: {exc}") from None
        problems = {k: v for k, v in info.items() if k in ("missing_keys", "unexpected_keys", "mismatched_keys") and v}
        if problems:
            raise CheckpointError(f"the weights in {folder} do not fit LlamaModel: " + "; ".join(f"{k}: {sorted(map(str, v))[:6]}" for k, v in problems.items()))
        hf = {k: v for k, v in hf.items() if k not in ("architectures", "_name_or_path", "transformers_version", "auto_map")}
        return self.loaded(hf, encoder, tokenizer)

    def hf_config(self, hf: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in hf.items() if k != "model_type"}

    def wrap(self, encoder: Any, tokenizer: Any, max_length: int):
        from .nitro_e import LlamaTextEncoder

        return LlamaTextEncoder(encoder, tokenizer, max_length=max_length)


class DCAEBuilder(ModelBuilder):
    """``config.json`` (``AutoencoderDC``) + ``diffusion_pytorch_model.safetensors`` -> :class:`~.nitro_e.DiffusersDCAE`."""

    name = "dc_ae"
    config_class = dict

    def read_checkpoint(self, files: CheckpointFiles) -> Checkpoint:
        from zoo.weights import load_safetensors

        folder = _folder(files, "config.json")
        cfg = read_json(folder / "config.json", "DC-AE config")
        if cfg.get("_class_name") not in (None, "AutoencoderDC"):
            raise CheckpointError(f"{folder / 'config.json'} describes a {cfg['_class_name']}, not an AutoencoderDC: another model's files")
        weights = folder / "diffusion_pytorch_model.safetensors"
        if not weights.exists():
            raise CheckpointError(f"no diffusion_pytorch_model.safetensors next to {folder / 'config.json'}")
        state, _ = load_safetensors(weights)
        return Checkpoint(state_dict={f"vae.{k}": v for k, v in state.items()}, config={"vae": {k: v for k, v in cfg.items() if not k.startswith("_")}})

    def build(self, config: Mapping[str, Any]):
        from .libs import diffusers_module
        from .nitro_e import DiffusersDCAE

        return DiffusersDCAE(diffusers_module().AutoencoderDC.from_config(dict(config.get("vae") or {})))
