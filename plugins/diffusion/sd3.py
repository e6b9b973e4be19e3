"""Stable Diffusion 3 / 3.5 (Esser et al. 2024): an MMDiT rectified-flow transformer on a
16-channel VAE, conditioned on CLIP-L + CLIP-G + T5-XXL — diffusers' ``SD3Transformer2DModel``,
transformers' ``CLIPTextModelWithProjection`` / ``T5EncoderModel``, zoo's flow driver.

The loop is :func:`zoo.sampling.sample_flow` on :func:`zoo.sampling.flow_match_sigmas` (the
``FlowMatchEulerDiscreteScheduler`` grid with SD3's shift 3, number for number), the model called
at ``sigma * 1000``, CFG as one batch of 2B rows. Prompt encoding is the pipeline's: each CLIP on
77 padded tokens (penultimate hidden states, pooled projections), T5 on 256 padded tokens without
a mask (so the padding is part of the condition and is kept), CLIP states zero-padded to T5's
width and put before T5's; prompts and negatives go through each encoder apart, as in the pipeline
(``batch_text_encoders=True``: one batch), and no scheduler object is built.

The time grid honours the scheduler config the release ships (:func:`zoo.sampling.scheduler_sigmas`:
static ``shift``, or ``use_dynamic_shifting`` with ``mu`` from the latent's token count as the
pipeline computes it, or ``generate(mu=...)``). Skip-layer guidance (``generate(skip_layer_guidance=
{"layers": [7, 8, 9], ...})`` or the config field; :class:`zoo.sampling.SkipLayerGuidance`) adds the
pipeline's ``skip_guidance_layers`` term on guided steps inside its window: one more pass of the
``B`` conditional rows with those blocks skipped (``SD3Transformer2DModel(..., skip_layers=)``).

Example:
    >>> from zoo_plugins.diffusion.testing import tiny_sd3
    >>> model = tiny_sd3()
    >>> tuple(model.generate("a red fox", steps=2, seed=0).shape)
    (1, 3, 32, 32)
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import torch
from torch import nn

from zoo.errors import InputError, ZooError
from zoo.model import ZooModel
from zoo.sampling.cfg import SkipLayerGuidance, as_skip_layer_guidance
from zoo.sampling.flow import sample_flow
from zoo.sampling.flow_match import flow_match_timestep, scheduler_sigmas
from zoo.sampling.noise import as_noise_source
from zoo.sampling.progress import ProgressArg

from .components import DiffusersVAE, check_prompts
from .config import SD3Config
from .libs import diffusers_module
from .pixart import TextToImageBase, check_size

__all__ = ["SD3TextEncoders", "StableDiffusion3"]


class SD3TextEncoders(ZooModel, nn.Module):
    """SD3's three text encoders and tokenizers: ``embed(texts) -> (states [B, 77 + L, D_t5], pooled [B, D_l + D_g])``.

    ``t5=None`` (the pipeline's ``text_encoder_3=None``) puts zeros where T5's states would be."""

    def __init__(self, clip_l: nn.Module, clip_g: nn.Module, t5: Optional[nn.Module], tokenizers: Sequence[Any] = (None, None, None),
                 *, joint_dim: Optional[int] = None):
        super().__init__()
        self.clip_l, self.clip_g, self.t5 = clip_l, clip_g, t5
        self.tokenizers = list(tokenizers)
        self.joint_dim = int(joint_dim or (t5.config.d_model if t5 is not None else 4096))

    def describe_facts(self) -> dict[str, Any]:
        return {"t5": self.t5 is not None, "joint_dim": self.joint_dim}

    def _tokens(self, i: int, texts: list[str], length: int) -> torch.Tensor:
        tok = self.tokenizers[i]
        if tok is None:
            raise ZooError(f"{self.name} was built without tokenizer files (pretrained=False): load it with weights=DIR or attach tokenizers")
        return tok(texts, padding="max_length", max_length=length, truncation=True, add_special_tokens=True, return_tensors="pt").input_ids

    @torch.no_grad()
    def embed(self, texts: Sequence[str], max_sequence_length: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
        texts = check_prompts(list(texts), "texts")
        device = next(self.clip_l.parameters()).device
        states, pooled = [], []
        for i, enc in enumerate((self.clip_l, self.clip_g)):
            length = int(self.tokenizers[i].model_max_length) if self.tokenizers[i] is not None else 77
            out = enc(self._tokens(i, texts, min(length, 77)).to(device), output_hidden_states=True)
            pooled.append(out[0])
            states.append(out.hidden_states[-2])
        clip = torch.cat(states, dim=-1)
        if self.t5 is None:
            t5 = torch.zeros(len(texts), max_sequence_length, self.joint_dim, device=device, dtype=clip.dtype)
        else:
            t5 = self.t5(self._tokens(2, texts, max_sequence_length).to(device))[0]
        clip = nn.functional.pad(clip, (0, t5.shape[-1] - clip.shape[-1]))
        return torch.cat([clip, t5.to(clip.dtype)], dim=-2), torch.cat(pooled, dim=-1)

    def encode(self, texts: Sequence[str] | str) -> Any:
        from zoo.interfaces import Latents

        states, pooled = self.embed([texts] if isinstance(texts, str) else texts)
        return Latents(values=states.float(), tokenizer=self.name, meta={"pooled": pooled.float()})

    def decode(self, tokens: Any, **kwargs: Any) -> Any:
        from zoo.errors import TokenError

        raise TokenError(f"{self.name} holds text encoders: their embeddings cannot be decoded back to text")


class StableDiffusion3(TextToImageBase):
    """An SD3 / SD3.5 generator: ``generate(prompt, ...) -> images [B, 3, H, W]`` in ``[-1, 1]``."""

    component_roles = ("text_encoders", "vae")

    def __init__(self, config: SD3Config):
        super().__init__()
        self.config = config
        self.transformer = diffusers_module().SD3Transformer2DModel.from_config(dict(config.transformer))

    @property
    def latent_channels(self) -> int:
        return int(self.transformer.config.in_channels)

    @property
    def image_size(self) -> int:
        return int(self.transformer.config.sample_size) * self.config.vae_scale_factor

    def describe_facts(self) -> dict[str, Any]:
        return {"text": self.config.text_encoders, "vae": self.config.vae}  # one line: card names of the components

    def sigmas(self, steps: int, height: Optional[int] = None, width: Optional[int] = None, *, mu: Optional[float] = None) -> list[float]:
        """The noise levels of a ``steps``-step generation at ``height x width`` px (default: the card's
        size): the scheduler config's static shift, or with ``use_dynamic_shifting`` the pipeline's
        ``mu`` from the latent's patch count (or ``mu`` itself).

        Example:
            >>> from zoo_plugins.diffusion.testing import tiny_sd3
            >>> [round(s, 4) for s in tiny_sd3(components=False).sigmas(2)]
            [1.0, 0.0089, 0.0]
        """
        f = self.config.vae_scale_factor * int(self.transformer.config.patch_size)
        h, w = (self.image_size if height is None else height) // f, (self.image_size if width is None else width) // f
        return scheduler_sigmas(steps, dict(self.config.scheduler), image_seq_len=h * w, mu=mu)

    def skip_layer_guidance(self, value: Any = None) -> Optional[SkipLayerGuidance]:
        """The skip-layer guidance a generation uses: ``value`` (``False``: off), else the config's."""
        slg = as_skip_layer_guidance(self.config.skip_layer_guidance if value is None else value)
        if slg is not None:
            slg.check_layers(int(self.transformer.config.num_layers))
        return slg

    @torch.no_grad()
    def generate(self, prompt: str | Sequence[str], negative_prompt: str | Sequence[str] | None = None, *,
                 steps: Optional[int] = None, guidance_scale: Optional[float] = None, height: Optional[int] = None,
                 width: Optional[int] = None, generator: Optional[torch.Generator] = None, seed: Optional[int] = None,
                 num_images_per_prompt: int = 1, return_latents: bool = False, progress: ProgressArg = None,
                 skip_layer_guidance: SkipLayerGuidance | dict[str, Any] | bool | None = None, mu: Optional[float] = None) -> torch.Tensor:
        """Images ``[B * num_images_per_prompt, 3, height, width]`` in ``[-1, 1]`` (``return_latents``:
        the final latents ``[B, 16, h, w]`` in the transformer's space). CFG off at ``guidance_scale <= 1``.

        ``skip_layer_guidance``: ``{"layers": [...], "scale", "start", "stop"}`` (the pipeline's
        ``skip_guidance_layers``, ``skip_layer_guidance_scale/start/stop``), ``False`` to turn off the
        card's; it acts only with CFG, as in the pipeline. ``mu``: the dynamic-shift ``mu`` (used only when
        the scheduler config sets ``use_dynamic_shifting``; default: from the image size)."""
        prompts = check_prompts(prompt)
        steps = self.config.steps if steps is None else steps
        guidance_scale = self.config.guidance_scale if guidance_scale is None else guidance_scale
        self._check_steps_cfg(steps, guidance_scale)
        vf = self.config.vae_scale_factor
        f = vf * int(self.transformer.config.patch_size)
        height, width = check_size(self.image_size if height is None else height, self.image_size if width is None else width, f)
        if isinstance(num_images_per_prompt, bool) or not isinstance(num_images_per_prompt, int) or num_images_per_prompt < 1:
            raise InputError(f"num_images_per_prompt must be a whole number >= 1, got {num_images_per_prompt!r}")
        slg = self.skip_layer_guidance(skip_layer_guidance)
        times = self.sigmas(steps, height, width, mu=mu)
        g = self._generator(generator, seed)
        guided = guidance_scale > 1.0
        b, n = len(prompts), num_images_per_prompt
        texts = prompts + (self._negatives(negative_prompt, b) if guided else [])
        encoders = self.component("text_encoders")
        if self.config.batch_text_encoders or not guided:
            states, pooled = encoders.embed(texts, self.config.max_sequence_length)
        else:
            parts = [encoders.embed(group, self.config.max_sequence_length) for group in (texts[:b], texts[b:])]
            states, pooled = (torch.cat(pair) for pair in zip(*parts))
        p = next(self.transformer.parameters())
        states, pooled = states.to(p.device, p.dtype), pooled.to(p.device, p.dtype)
        if n > 1:  # prompt i's rows repeat n times in a row (the pipeline's order)
            states = states.view(-1, b, *states.shape[1:]).repeat_interleave(n, dim=1).flatten(0, 1)
            pooled = pooled.view(-1, b, pooled.shape[-1]).repeat_interleave(n, dim=1).flatten(0, 1)
        noise = as_noise_source(g).randn((b * n, self.latent_channels, height // vf, width // vf), dtype=torch.float32)

        def velocity(x: torch.Tensor, t: float, pair: bool) -> torch.Tensor:
            rows = x.shape[0]
            ts = torch.tensor(flow_match_timestep(t), dtype=torch.float32, device=p.device).expand(rows)
            return self.transformer(hidden_states=x.to(p.dtype), timestep=ts, encoder_hidden_states=states[:rows] if pair else states[: b * n],
                                    pooled_projections=pooled[:rows] if pair else pooled[: b * n], return_dict=False)[0]

        def skipped(x: torch.Tensor, t: float, layers: tuple[int, ...]) -> torch.Tensor:
            ts = torch.tensor(flow_match_timestep(t), dtype=torch.float32, device=p.device).expand(x.shape[0])
            return self.transformer(hidden_states=x.to(p.dtype), timestep=ts, encoder_hidden_states=states[: b * n],
                                    pooled_projections=pooled[: b * n], return_dict=False, skip_layers=list(layers))[0]

        slg = slg if guided else None
        latents = sample_flow(velocity, noise.to(p.device), times=times, guidance=float(guidance_scale) if guided else None,
                              progress=progress, skip_guidance=slg, skip_fn=skipped if slg is not None else None)
        if return_latents:
            return latents
        vae: DiffusersVAE = self.component("vae")
        return vae.decode_raw(vae.from_model_space(latents))
