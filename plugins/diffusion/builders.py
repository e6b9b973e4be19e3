"""Builders of the diffusers-layout releases: files -> zoo model, strictly.

* ``pixart_sigma``: ``transformer/config.json`` (class ``PixArtTransformer2DModel``, or the
  ``Transformer2DModel`` name the PixArt-Σ repos were written with: the same keys) and
  ``transformer/diffusion_pytorch_model.safetensors``; ``scheduler/scheduler_config.json`` when
  present. The text encoder and VAE are other cards, loaded when first needed.
* ``diffusers_vae``: ``vae/config.json`` + ``vae/diffusion_pytorch_model.safetensors`` (``AutoencoderKL``).
* ``t5_encoder``: ``text_encoder/`` (transformers ``T5EncoderModel``: ``config.json``, one
  ``model.safetensors`` or shards with their index) and ``tokenizer/`` (``spiece.model`` and
  the tokenizer jsons, read by transformers' own T5 tokenizer class; nothing named in a file is
  imported, never remote code). The T5 weights load through ``from_pretrained`` on the local
  folder (it ties ``shared`` / ``encoder.embed_tokens`` as the release stores one of them);
  every missing or unexpected key is a CheckpointError.

Every json is read as data; configs hold only architecture values.

Example:
    >>> PixArtSigmaBuilder().name, DiffusersVAEBuilder().name, T5EncoderBuilder().name
    ('pixart_sigma', 'diffusers_vae', 't5_encoder')
"""

from __future__ import annotations

from typing import Any, Mapping

from zoo.builders import Checkpoint, CheckpointFiles, ModelBuilder
from zoo.errors import CheckpointError, ConfigError

from .config import PixArtSigmaConfig
from .layout import component_config, component_state, read_json, subfolder_files

__all__ = ["PixArtSigmaBuilder", "DiffusersVAEBuilder", "T5EncoderBuilder"]

PIXART_CLASSES = ("PixArtTransformer2DModel", "Transformer2DModel")


class PixArtSigmaBuilder(ModelBuilder):
    name = "pixart_sigma"
    config_class = PixArtSigmaConfig

    def needed_dependencies(self, files: CheckpointFiles, card: Any) -> set[str]:
        """Nothing at load: the text encoder and VAE load when a prompt is first encoded / decoded."""
        return set()

    def read_checkpoint(self, files: CheckpointFiles) -> Checkpoint:
        cfg = component_config(files.paths, "transformer", PIXART_CLASSES)
        config: dict[str, Any] = {"transformer": cfg}
        sched = subfolder_files(files.paths, "scheduler").get("scheduler_config.json")
        if sched is not None:
            data = read_json(sched, "scheduler config")
            if data.get("_class_name") not in (None, "DPMSolverMultistepScheduler"):
                raise CheckpointError(f"{sched} configures a {data['_class_name']}; PixArt-Σ samples with DPMSolverMultistepScheduler")
            config["scheduler"] = {k: v for k, v in data.items() if not k.startswith("_")}
        return Checkpoint(state_dict=component_state(files.paths, "transformer", state_prefix="transformer."), config=config)

    def build(self, config: PixArtSigmaConfig):
        from .pixart import PixArtSigma

        return PixArtSigma(config)

    def finalize(self, model, files, config):
        """A model built with ``pretrained=False`` loads random components too (no download)."""
        model.components_pretrained = files is not None
        return model


class DiffusersVAEBuilder(ModelBuilder):
    name = "diffusers_vae"
    config_class = dict

    def read_checkpoint(self, files: CheckpointFiles) -> Checkpoint:
        cfg = component_config(files.paths, "vae", "AutoencoderKL")
        return Checkpoint(state_dict=component_state(files.paths, "vae", state_prefix="vae."), config={"vae": cfg})

    def build(self, config: Mapping[str, Any]):
        from .components import DiffusersVAE
        from .libs import diffusers_module

        return DiffusersVAE(diffusers_module().AutoencoderKL.from_config(dict(config.get("vae") or {})))


class T5EncoderBuilder(ModelBuilder):
    name = "t5_encoder"
    config_class = dict

    def __init__(self) -> None:
        self._loaded: tuple[int, Any, Any] | None = None  # (id of the hf dict, encoder, tokenizer)

    def read_checkpoint(self, files: CheckpointFiles) -> Checkpoint:
        from .libs import transformers_module

        enc_files = subfolder_files(files.paths, "text_encoder")
        if "config.json" not in enc_files:
            raise CheckpointError(f"no text_encoder/config.json among {sorted(files.paths)} ({files.origin})")
        hf = read_json(enc_files["config.json"], "text encoder config")
        if hf.get("model_type") != "t5":
            raise CheckpointError(f"{enc_files['config.json']} has model_type {hf.get('model_type')!r}, not 't5': another model's files")
        hf = {k: v for k, v in hf.items() if k not in ("auto_map", "architectures", "_name_or_path", "transformers_version")}
        tf = transformers_module()
        folder = enc_files["config.json"].parent
        try:
            encoder, info = tf.T5EncoderModel.from_pretrained(str(folder), config=tf.T5Config.from_dict(dict(hf)), local_files_only=True,
                                                              trust_remote_code=False, output_loading_info=True)
        except (OSError, ValueError, RuntimeError) as exc:
            raise CheckpointError(f"transformers could not load the T5 encoder in {folder}: {exc}") from None
        problems = {k: v for k, v in info.items() if k in ("missing_keys", "unexpected_keys", "mismatched_keys") and v}
        if problems:
            listed = "; ".join(f"{k} ({len(v)}): {sorted(map(str, v))[:6]}" for k, v in problems.items())
            raise CheckpointError(f"the weights in {folder} do not fit T5EncoderModel: {listed}")
        tokenizer = self._tokenizer(files)
        self._loaded = (id(hf), encoder, tokenizer)
        return Checkpoint(state_dict=encoder.state_dict(), config={"hf": hf})

    @staticmethod
    def _tokenizer(files: CheckpointFiles) -> Any:
        from .libs import transformers_module

        tok_files = subfolder_files(files.paths, "tokenizer")
        if "spiece.model" not in tok_files and "tokenizer.json" not in tok_files:
            raise CheckpointError(f"no tokenizer/spiece.model (or tokenizer.json) among {sorted(files.paths)} ({files.origin})")
        folder = next(iter(tok_files.values())).parent
        try:
            return transformers_module().T5Tokenizer.from_pretrained(str(folder), local_files_only=True)
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"transformers could not read the T5 tokenizer in {folder}: {exc}") from None

    def build(self, config: Mapping[str, Any]):
        from .components import TextEncoder
        from .libs import transformers_module

        hf = config.get("hf") or {}
        if self._loaded is not None and self._loaded[0] == id(hf):
            _, encoder, tokenizer = self._loaded
            self._loaded = None
        else:
            tf = transformers_module()
            try:
                encoder = tf.T5EncoderModel(tf.T5Config.from_dict(dict(hf)))
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"bad T5 config {hf!r}: {exc}") from None
            tokenizer = None
        return TextEncoder(encoder, tokenizer, max_length=int(config.get("max_length", 512)))

    def convert(self, state_dict: Mapping[str, Any], config: Any) -> Mapping[str, Any]:
        return {f"encoder.{k}": v for k, v in state_dict.items()}
