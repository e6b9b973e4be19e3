"""Nitro-E (AMD, Shen et al. 2025): text-to-image on E-MMDiT (:mod:`.emmdit`, built by zoo in the
official key layout), the DC-AE f32c32 latent (diffusers ``AutoencoderDC``) and Llama-3.2-1B's
last hidden states (transformers ``LlamaModel``), sampled by zoo's flow driver.

The loop is the official ``EMMDiTPipeline``'s (``AMD-AGI/Nitro-E`` ``core/models/emmdit_pipeline.py``):
prompts (and negative prompts, default ``""``) cleaned as the pipeline's default
``clean_caption=True`` (:mod:`.captions`; ``clean_caption=False``: only lower-cased and stripped); Llama on
``max_sequence_length`` (128) tokens padded with EOS, with the attention mask, its final-norm
hidden states as the condition (the padding is not masked in the denoiser, so it is part of the
condition and kept); noise ``randn([B, 32, H/32, W/32], generator)``;
``FlowMatchEulerDiscreteScheduler(1000)``'s grid with no shift
(:func:`zoo.sampling.flow_match_sigmas`), the model called at ``sigma * 1000``; CFG as one batch
of 2B rows, ``uncond + w (cond - uncond)``, off at ``guidance_scale <= 1`` (the distilled cards:
4 steps, no CFG); decode ``vae.decode(z / scaling_factor)``.

What differs: caption cleaning without bs4 + ftfy is an error naming the extra (the pipeline
warns and falls back to lower-case + strip); E-MMDiT runs at its trained size only (it adds its fixed
positional table after the token reconstruction), which zoo checks up front.

Example:
    >>> from zoo_plugins.diffusion.nitro_e_testing import tiny_nitro_e
    >>> model = tiny_nitro_e()
    >>> tuple(model.generate("a red fox", steps=2, seed=0).shape)
    (1, 3, 32, 32)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import torch
from torch import nn

from zoo.errors import ConfigError, InputError, TokenError, ZooError
from zoo.interfaces import Latents
from zoo.model import ZooModel
from zoo.sampling.flow import sample_flow
from zoo.sampling.flow_match import flow_match_sigmas, flow_match_timestep
from zoo.sampling.noise import as_noise_source
from zoo.sampling.progress import ProgressArg

from .captions import preprocess_captions
from .components import DiffusersVAE, check_prompts
from .emmdit import EMMDiT
from .pixart import TextToImageBase, check_size

__all__ = ["NitroEConfig", "NitroE", "LlamaTextEncoder", "DiffusersDCAE"]


@dataclass
class NitroEConfig:
    """Nitro-E: ``transformer`` holds the :class:`~.emmdit.EMMDiT` arguments (the release ships no
    config file: the card's values, the reference's ``init_pipe``: ``sample_size`` 16 with ASA at
    512 px, 32 without at 1024 px). ``text_encoder`` / ``vae`` name the component cards, loaded when
    first needed. Sampler defaults are the reference's (20 steps, CFG 4.5, 128 Llama tokens;
    the distilled cards: 4 steps, guidance 0)."""

    transformer: dict[str, Any] = field(default_factory=dict)
    text_encoder: str = "llama_text.llama_3_2_1b"
    vae: str = "dc_ae.f32c32_sana_1_0"
    vae_scale_factor: int = 32
    max_sequence_length: int = 128
    steps: int = 20
    guidance_scale: float = 4.5
    num_train_timesteps: int = 1000


class LlamaTextEncoder(ZooModel, nn.Module):
    """A transformers ``LlamaModel`` and its tokenizer: ``embed(texts, max_length) -> (states [B, L, D], mask [B, L])``,
    every text padded (with EOS, as Nitro-E sets ``pad_token = eos_token``) or truncated to ``max_length``
    tokens; the states are the final-norm hidden states (``hidden_states[-1]`` of the causal LM)."""

    def __init__(self, encoder: nn.Module, tokenizer: Any, *, max_length: int = 128):
        super().__init__()
        self.encoder, self.tokenizer, self.max_length = encoder, tokenizer, max_length
        if tokenizer is not None and tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token

    @property
    def hidden_size(self) -> int:
        return int(self.encoder.config.hidden_size)

    def describe_facts(self) -> dict[str, Any]:
        return {"hidden_size": self.hidden_size, "max_length": self.max_length}

    @torch.no_grad()
    def embed(self, texts: Sequence[str], max_length: Optional[int] = None) -> tuple[torch.Tensor, torch.Tensor]:
        texts = check_prompts(list(texts) if not isinstance(texts, str) else texts, "texts")
        if self.tokenizer is None:
            raise ZooError(f"{self.name} was built without its tokenizer files (pretrained=False): load it with weights=DIR "
                           "holding tokenizer.json, or attach one (model.tokenizer = ...)")
        out = self.tokenizer(texts, padding="max_length", max_length=int(max_length or self.max_length), truncation=True,
                             add_special_tokens=True, return_tensors="pt")
        device = next(self.encoder.parameters()).device
        mask = out.attention_mask.to(device)
        states = self.encoder(input_ids=out.input_ids.to(device), attention_mask=mask).last_hidden_state
        return states, mask

    def encode(self, texts: Sequence[str] | str) -> Latents:
        """The hidden states as :class:`~zoo.interfaces.Latents` (``lengths``: real tokens per text)."""
        states, mask = self.embed([texts] if isinstance(texts, str) else texts)
        return Latents(values=states.float(), tokenizer=self.name, lengths=mask.sum(1).cpu(), meta={"kind": "text embeddings"})

    def decode(self, tokens: Any, **kwargs: Any) -> Any:
        raise TokenError(f"{self.name} is a text encoder: its embeddings cannot be decoded back to text")


class DiffusersDCAE(DiffusersVAE):
    """A diffusers ``AutoencoderDC`` (deep-compression autoencoder, deterministic) as an image tokenizer:
    ``encode(images [B, 3, H, W] in [-1, 1]) -> Latents`` (``[B, h*w, C]``, ``meta["grid"]``), ``decode``.

    Example:
        >>> from zoo_plugins.diffusion.nitro_e_testing import tiny_dcae
        >>> vae = tiny_dcae()
        >>> z = vae.encode(torch.zeros(1, 3, 32, 32))
        >>> tuple(z.values.shape), vae.downsample_factor
        ((1, 256, 4), 2)
    """

    @property
    def downsample_factor(self) -> int:
        return 2 ** (len(self.vae.config.encoder_block_out_channels) - 1)

    @torch.no_grad()
    def encode(self, images: torch.Tensor, *, sample: bool = False, generator: Optional[torch.Generator] = None) -> Latents:
        images = self._check_images(images)
        p = next(self.vae.parameters())
        z = self.vae.encode(images.to(p.device, p.dtype)).latent
        return Latents(values=z.flatten(2).transpose(1, 2).float(), tokenizer=self.name, meta={"grid": tuple(z.shape[-2:])})


class NitroE(TextToImageBase):
    """A Nitro-E generator: ``generate(prompt, ...) -> images [B, 3, H, W]`` in ``[-1, 1]``."""

    def __init__(self, config: NitroEConfig):
        super().__init__()
        self.config = config
        self.transformer = EMMDiT(**dict(config.transformer))
        if self.transformer.use_sub_attn and config.max_sequence_length % 16:
            raise ConfigError(f"subregion attention splits the text into 4 x 4 runs too: max_sequence_length "
                              f"({config.max_sequence_length}) must be a multiple of 16")

    @property
    def latent_channels(self) -> int:
        return int(self.transformer.in_channels)

    @property
    def image_size(self) -> int:
        return int(self.transformer.sample_size) * self.config.vae_scale_factor

    def describe_facts(self) -> dict[str, Any]:
        return {"size": self.image_size, "asa": self.transformer.use_sub_attn, "text": self.config.text_encoder, "vae": self.config.vae}

    def sigmas(self, steps: int) -> list[float]:
        """The noise levels of a ``steps``-step generation (``FlowMatchEulerDiscreteScheduler(1000)``: no shift)."""
        return flow_match_sigmas(steps, shift=1.0, num_train_timesteps=self.config.num_train_timesteps)

    def _embed(self, texts: list[str], length: int, clean_caption: bool = True) -> torch.Tensor:
        return self.component("text_encoder").embed(preprocess_captions(texts, clean=clean_caption), length)[0]

    @torch.no_grad()
    def generate(self, prompt: str | Sequence[str], negative_prompt: str | Sequence[str] | None = None, *,
                 steps: Optional[int] = None, guidance_scale: Optional[float] = None, height: Optional[int] = None,
                 width: Optional[int] = None, generator: Optional[torch.Generator] = None, seed: Optional[int] = None,
                 num_images_per_prompt: int = 1, return_latents: bool = False, progress: ProgressArg = None,
                 clean_caption: bool = True) -> torch.Tensor:
        """Images ``[B * num_images_per_prompt, 3, height, width]`` in ``[-1, 1]`` (``return_latents``: the
        final latents ``[B, 32, h, w]``, scaled as the transformer sees them). CFG off at ``guidance_scale <= 1``;
        ``height``/``width`` default to (and must equal) the card's size. ``clean_caption`` (default True,
        as the pipeline): prompts and negative prompts cleaned of URLs, HTML, @handles, CJK, ids, file
        names... (:func:`~zoo_plugins.diffusion.captions.clean_caption`; needs bs4 + ftfy from
        ``zoo[diffusion]``); False only lower-cases and strips."""
        prompts = check_prompts(prompt)
        steps = self.config.steps if steps is None else steps
        guidance_scale = self.config.guidance_scale if guidance_scale is None else guidance_scale
        self._check_steps_cfg(steps, guidance_scale)
        vf = self.config.vae_scale_factor
        height, width = check_size(self.image_size if height is None else height, self.image_size if width is None else width, vf)
        if (height, width) != (self.image_size, self.image_size):
            raise InputError(f"{self.name} generates {self.image_size}x{self.image_size} images only (E-MMDiT re-adds its fixed "
                             f"positions after the token reconstruction), got {height}x{width}: load the card of that size")
        if isinstance(num_images_per_prompt, bool) or not isinstance(num_images_per_prompt, int) or num_images_per_prompt < 1:
            raise InputError(f"num_images_per_prompt must be a whole number >= 1, got {num_images_per_prompt!r}")
        g = self._generator(generator, seed)
        guided = guidance_scale > 1.0
        b, n = len(prompts), num_images_per_prompt
        length = self.config.max_sequence_length
        clean = bool(clean_caption)
        states = self._embed(prompts, length, clean)
        if guided:  # as the pipeline: negatives apart, padded to the prompts' length
            states = torch.cat([states, self._embed(self._negatives(negative_prompt, b), states.shape[1], clean)])
        p = next(self.transformer.parameters())
        states = states.to(p.device, p.dtype)
        if n > 1:  # prompt i's rows repeat n times in a row (the pipeline's order)
            states = states.view(-1, b, *states.shape[1:]).repeat_interleave(n, dim=1).flatten(0, 1)
        noise = as_noise_source(g).randn((b * n, self.latent_channels, height // vf, width // vf), dtype=torch.float32)

        def velocity(x: torch.Tensor, t: float, pair: bool) -> torch.Tensor:
            rows = x.shape[0]
            ts = torch.tensor(flow_match_timestep(t, self.config.num_train_timesteps), dtype=torch.float32, device=p.device).expand(rows)
            return self.transformer(x.to(p.dtype), states[:rows] if pair else states[: b * n], ts)

        latents = sample_flow(velocity, noise.to(p.device), times=self.sigmas(steps), guidance=float(guidance_scale) if guided else None,
                              progress=progress)
        if return_latents:
            return latents
        vae: DiffusersVAE = self.component("vae")
        return vae.decode_raw(vae.from_model_space(latents))
