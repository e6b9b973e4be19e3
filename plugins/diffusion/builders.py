"""Builders of the diffusers-layout releases: files -> zoo model, strictly.

* ``pixart_sigma``: ``transformer/config.json`` (class ``PixArtTransformer2DModel``, or the
  ``Transformer2DModel`` name the PixArt-Σ repos were written with: the same keys) and
  ``transformer/diffusion_pytorch_model.safetensors``; ``scheduler/scheduler_config.json`` when
  present; or one bare transformer state dict (``pixart-sigma-nitro.safetensors``), the
  architecture then from the card. The text encoder and VAE are other cards, loaded when first needed.
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

__all__ = ["PixArtSigmaBuilder", "DiffusersVAEBuilder", "TextEncoderBuilder", "T5EncoderBuilder", "SD3Builder", "SD3TextBuilder"]

PIXART_CLASSES = ("PixArtTransformer2DModel", "Transformer2DModel")
_HF_BOOKKEEPING = ("auto_map", "architectures", "_name_or_path", "transformers_version")


def hf_from_pretrained(files: CheckpointFiles, sub: str, model_type: str, model_class: str, config_class: str) -> tuple[Any, dict[str, Any]]:
    """``(module, config dict)`` of the transformers model under ``sub/`` (config.json read as data,
    its ``model_type`` checked; ``from_pretrained`` on the local folder, never remote code; any
    missing, unexpected or mismatched key is a CheckpointError)."""
    from .libs import transformers_module

    found = subfolder_files(files.paths, sub)
    if "config.json" not in found:
        raise CheckpointError(f"no {sub}/config.json among {sorted(files.paths)} ({files.origin})")
    hf = read_json(found["config.json"], f"{sub} config")
    if hf.get("model_type") != model_type:
        raise CheckpointError(f"{found['config.json']} has model_type {hf.get('model_type')!r}, not {model_type!r}: another model's files")
    hf = {k: v for k, v in hf.items() if k not in _HF_BOOKKEEPING}
    tf = transformers_module()
    folder = found["config.json"].parent
    try:
        module, info = getattr(tf, model_class).from_pretrained(str(folder), config=getattr(tf, config_class).from_dict(dict(hf)),
                                                                 local_files_only=True, trust_remote_code=False, output_loading_info=True)
    except (OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"transformers could not load the {model_class} in {folder}: {exc}") from None
    problems = {k: v for k, v in info.items() if k in ("missing_keys", "unexpected_keys", "mismatched_keys") and v}
    if problems:
        listed = "; ".join(f"{k} ({len(v)}): {sorted(map(str, v))[:6]}" for k, v in problems.items())
        raise CheckpointError(f"the weights in {folder} do not fit {model_class}: {listed}")
    return module, hf


def hf_tokenizer(files: CheckpointFiles, sub: str, tokenizer_class: str, needs: tuple[str, ...]) -> Any:
    """transformers' ``tokenizer_class`` read from ``sub/`` (one of ``needs`` must be there)."""
    from .libs import transformers_module

    found = subfolder_files(files.paths, sub)
    if not any(n in found for n in needs):
        raise CheckpointError(f"no {sub}/{' or '.join(needs)} among {sorted(files.paths)} ({files.origin})")
    folder = next(iter(found.values())).parent
    try:
        return getattr(transformers_module(), tokenizer_class).from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"transformers could not read the {tokenizer_class} in {folder}: {exc}") from None


class PixArtSigmaBuilder(ModelBuilder):
    name = "pixart_sigma"
    config_class = PixArtSigmaConfig

    def needed_dependencies(self, files: CheckpointFiles, card: Any) -> set[str]:
        """Nothing at load: the text encoder and VAE load when a prompt is first encoded / decoded."""
        return set()

    def read_checkpoint(self, files: CheckpointFiles) -> Checkpoint:
        single = [p for n, p in files.paths.items() if "/" not in n and n.endswith(".safetensors")]
        if single and not subfolder_files(files.paths, "transformer"):
            # a bare transformer state dict (amd/PixArt-Sigma-Nitro's pixart-sigma-nitro.safetensors: the
            # PixArtTransformer2DModel keys, loaded by its README with load_state_dict): the card holds the config
            from zoo.weights import load_safetensors

            if len(single) > 1:
                raise CheckpointError(f"{len(single)} top-level safetensors files among {sorted(files.paths)}: give the one transformer file")
            state, _meta = load_safetensors(single[0])
            return Checkpoint(state_dict={f"transformer.{k}": v for k, v in state.items()}, config={})
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


class TextEncoderBuilder(ModelBuilder):
    """A transformers text encoder (+ tokenizer) card: ``read_checkpoint`` loads the release with
    transformers and hands the very instance to ``build`` (no second copy of the weights);
    ``build`` without a read (``pretrained=False``, ``device="meta"``) makes a fresh model from the
    config dict. A subclass names the transformers classes and the zoo wrapper.

    Example:
        >>> T5EncoderBuilder().config_class is dict
        True
    """

    config_class = dict
    model_class: str = ""   # transformers model class, e.g. "T5EncoderModel"
    hf_config_class: str = ""  # its config class, e.g. "T5Config"
    what: str = ""  # for messages: "T5", "CLIP text", ...
    default_max_length: int = 77

    def __init__(self) -> None:
        self._loaded: tuple[int, Any, Any] | None = None  # (id of the hf dict, encoder, tokenizer)

    def loaded(self, hf: dict[str, Any], encoder: Any, tokenizer: Any) -> Checkpoint:
        """Keep what ``read_checkpoint`` loaded for ``build``; the checkpoint ``zoo.load`` checks."""
        self._loaded = (id(hf), encoder, tokenizer)
        return Checkpoint(state_dict=encoder.state_dict(), config={"hf": hf})

    def hf_config(self, hf: Mapping[str, Any]) -> dict[str, Any]:
        """The keyword dict the transformers config class is built from."""
        return dict(hf)

    def wrap(self, encoder: Any, tokenizer: Any, max_length: int):
        raise NotImplementedError

    def build(self, config: Mapping[str, Any]):
        from .libs import transformers_module

        hf = config.get("hf") or {}
        if self._loaded is not None and self._loaded[0] == id(hf):
            _, encoder, tokenizer = self._loaded
            self._loaded = None
        else:
            tf = transformers_module()
            try:
                encoder = getattr(tf, self.model_class)(getattr(tf, self.hf_config_class).from_dict(self.hf_config(hf)))
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"bad {self.what} config {hf!r}: {exc}") from None
            tokenizer = None
        return self.wrap(encoder, tokenizer, int(config.get("max_length", self.default_max_length)))

    def convert(self, state_dict: Mapping[str, Any], config: Any) -> Mapping[str, Any]:
        return {f"encoder.{k}": v for k, v in state_dict.items()}


class T5EncoderBuilder(TextEncoderBuilder):
    name = "t5_encoder"
    model_class, hf_config_class, what, default_max_length = "T5EncoderModel", "T5Config", "T5", 512

    def read_checkpoint(self, files: CheckpointFiles) -> Checkpoint:
        encoder, hf = hf_from_pretrained(files, "text_encoder", "t5", "T5EncoderModel", "T5Config")
        tokenizer = hf_tokenizer(files, "tokenizer", "T5Tokenizer", ("spiece.model", "tokenizer.json"))
        return self.loaded(hf, encoder, tokenizer)

    def wrap(self, encoder: Any, tokenizer: Any, max_length: int):
        from .components import TextEncoder

        return TextEncoder(encoder, tokenizer, max_length=max_length)


class SD3Builder(ModelBuilder):
    """``transformer/`` (``SD3Transformer2DModel``; one safetensors file or shards with their index)
    and ``scheduler/scheduler_config.json`` (``FlowMatchEulerDiscreteScheduler``) of an SD3 / 3.5 repo."""

    name = "sd3"

    def __init__(self) -> None:
        from .config import SD3Config

        self.config_class = SD3Config

    def needed_dependencies(self, files: CheckpointFiles, card: Any) -> set[str]:
        return set()

    def read_checkpoint(self, files: CheckpointFiles) -> Checkpoint:
        config: dict[str, Any] = {"transformer": component_config(files.paths, "transformer", "SD3Transformer2DModel")}
        sched = subfolder_files(files.paths, "scheduler").get("scheduler_config.json")
        if sched is not None:
            data = read_json(sched, "scheduler config")
            if data.get("_class_name") not in (None, "FlowMatchEulerDiscreteScheduler"):
                raise CheckpointError(f"{sched} configures a {data['_class_name']}; SD3 samples with FlowMatchEulerDiscreteScheduler")
            config["scheduler"] = {k: v for k, v in data.items() if not k.startswith("_")}
        return Checkpoint(state_dict=component_state(files.paths, "transformer", state_prefix="transformer."), config=config)

    def build(self, config: Any):
        from .sd3 import StableDiffusion3

        return StableDiffusion3(config)

    def finalize(self, model, files, config):
        model.components_pretrained = files is not None
        return model


class SD3TextBuilder(ModelBuilder):
    """SD3's ``text_encoder/`` (CLIP-L), ``text_encoder_2/`` (CLIP-G), ``text_encoder_3/`` (T5-XXL)
    and ``tokenizer{,_2,_3}/`` (two CLIP BPE tokenizers, one T5 sentencepiece tokenizer)."""

    name = "sd3_text"
    config_class = dict
    PARTS = (("text_encoder", "clip_text_model", "CLIPTextModelWithProjection", "CLIPTextConfig", "clip_l"),
             ("text_encoder_2", "clip_text_model", "CLIPTextModelWithProjection", "CLIPTextConfig", "clip_g"),
             ("text_encoder_3", "t5", "T5EncoderModel", "T5Config", "t5"))

    def __init__(self) -> None:
        self._loaded: tuple[int, list[Any], list[Any]] | None = None

    def read_checkpoint(self, files: CheckpointFiles) -> Checkpoint:
        modules, config, state = [], {}, {}
        for sub, model_type, cls, cfg_cls, key in self.PARTS:
            module, hf = hf_from_pretrained(files, sub, model_type, cls, cfg_cls)
            modules.append(module)
            config[key] = hf
            state.update({f"{key}.{k}": v for k, v in module.state_dict().items()})
        toks = [hf_tokenizer(files, "tokenizer", "CLIPTokenizer", ("vocab.json",)), hf_tokenizer(files, "tokenizer_2", "CLIPTokenizer", ("vocab.json",)),
                hf_tokenizer(files, "tokenizer_3", "T5Tokenizer", ("spiece.model", "tokenizer.json"))]
        self._loaded = (id(config["clip_l"]), modules, toks)
        return Checkpoint(state_dict=state, config=config)

    def build(self, config: Mapping[str, Any]):
        from .libs import transformers_module
        from .sd3 import SD3TextEncoders

        if self._loaded is not None and self._loaded[0] == id(config.get("clip_l")):
            _, modules, toks = self._loaded
            self._loaded = None
        else:
            tf = transformers_module()
            try:
                modules = [getattr(tf, cls)(getattr(tf, cfg_cls).from_dict(dict(config.get(key) or {})))
                           for _, _, cls, cfg_cls, key in self.PARTS]
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"bad SD3 text encoder config: {exc}") from None
            toks = [None, None, None]
        return SD3TextEncoders(modules[0], modules[1], modules[2], toks)
