"""InstaFlow and 2-Rectified Flow (Liu et al., "InstaFlow: One Step is Enough for High-Quality
Diffusion-Based Text-to-Image Generation", ICLR 2024; gnobitab/InstaFlow, MIT code): Stable
Diffusion 1.5's UNet re-trained as a straight rectified flow (reflow), then distilled to one step.
diffusers' ``UNet2DConditionModel`` / ``AutoencoderKL``, transformers' ``CLIPTextModel``, zoo's
flow driver.

The official ``RectifiedFlowPipeline`` (``code/pipeline_rf.py``) runs, for ``N`` steps,
``t_i = (1 - i / N) * 1000`` for ``i = 0..N-1``, ``v = unet(x, t_i, text)`` and
``x <- x + v / N`` (the UNet's velocity points from noise to data), CFG as
``v_neg + w (v_text - v_neg)`` on ``[negative; prompt]`` rows when ``w > 1``, noise
``randn([B, 4, H/8, W/8], generator)`` times the scheduler's ``init_noise_sigma`` (1 for SD 1.5's
schedulers: the scheduler does nothing else), decode ``vae.decode(x / scaling_factor)``.

zoo runs the same Euler steps with :func:`zoo.sampling.sample_flow` on the uniform grid
``t = 1, (N-1)/N, ..., 0`` (``dt = 1 / N``: the same float as the pipeline's), the UNet called at
:func:`unet_timestep` ``(t) = t * 1000`` (equal as float32 to the pipeline's ``(1 - i/N) * 1000``)
and its velocity negated (zoo's update is ``x - dt v``); CFG is one batch of 2B rows
``[prompt; negative]``. Prompts are CLIP-encoded as the pipeline does: 77 padded tokens, no
attention mask, the last hidden state; prompts and negatives apart. With the same modules and
generator the latents are bitwise equal to the official pipeline's (float32). In half precision
the UNet runs in its dtype while zoo keeps the latents and the Euler sum in float32 (the pipeline
keeps them in the UNet's dtype): the results then differ by that rounding.

Example:
    >>> from zoo_plugins.diffusion.testing import tiny_instaflow
    >>> model = tiny_instaflow()
    >>> images = model.generate("a red fox", steps=1, seed=0)
    >>> tuple(images.shape), bool(images.abs().max() <= 1)
    ((1, 3, 32, 32), True)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import torch
from torch import nn

from zoo.errors import InputError, TokenError, ZooError
from zoo.model import ZooModel
from zoo.sampling.flow import sample_flow
from zoo.sampling.noise import as_noise_source
from zoo.sampling.progress import ProgressArg

from .components import DiffusersVAE, check_prompts
from .libs import diffusers_module
from .pixart import TextToImageBase, check_size

__all__ = ["InstaFlowConfig", "InstaFlow", "CLIPTextEncoder", "unet_timestep"]


@dataclass
class InstaFlowConfig:
    """InstaFlow / 2-Rectified Flow: ``unet`` holds the ``UNet2DConditionModel`` config (the
    release's ``unet/config.json``); ``text_encoder`` / ``vae`` name the component cards (CLIP
    ViT-L/14 text tower, SD 1.5 VAE) loaded when first needed; ``vae_scale_factor`` is that VAE's
    downsampling; ``num_train_timesteps`` the scale of the UNet's time input (``t * 1000``).
    Sampler defaults are the authors' (InstaFlow-0.9B: 1 step, no CFG; 2-Rectified Flow: the
    README's 25 steps and CFG 1.5)."""

    unet: dict[str, Any] = field(default_factory=dict)
    text_encoder: str = "clip_text.instaflow_0_9b"
    vae: str = "sd_vae.instaflow_0_9b"
    vae_scale_factor: int = 8
    num_train_timesteps: int = 1000
    steps: int = 1
    guidance_scale: float = 0.0


def unet_timestep(t: float, num_train_timesteps: int = 1000) -> float:
    """The UNet's time input at flow time ``t`` (1 = noise): ``t * 1000`` rounded to float32, as
    the official pipeline's ``torch.ones(B) * (1 - i/N) * 1000`` is.

    Example:
        >>> unet_timestep(0.75), unet_timestep(1.0)
        (750.0, 1000.0)
    """
    return float(torch.tensor(t * num_train_timesteps, dtype=torch.float32))


class CLIPTextEncoder(ZooModel, nn.Module):
    """A transformers ``CLIPTextModel`` (``self.encoder``) and its ``CLIPTokenizer``, as Stable
    Diffusion 1.x conditions on it: ``embed(texts) -> [B, 77, D]``, the last hidden state of the
    texts padded (and truncated) to the tokenizer's 77 tokens, without an attention mask (the
    causal mask alone: the padding is part of the condition).

    Example:
        >>> from zoo_plugins.diffusion.testing import tiny_clip_text
        >>> tuple(tiny_clip_text().embed(["a red fox"]).shape)
        (1, 77, 32)
    """

    def __init__(self, encoder: nn.Module, tokenizer: Any = None, *, max_length: int = 77):
        super().__init__()
        self.encoder = encoder
        self.tokenizer = tokenizer
        self.max_length = int(max_length)

    @property
    def hidden_size(self) -> int:
        return int(self.encoder.config.hidden_size)

    def describe_facts(self) -> dict[str, Any]:
        return {"hidden_size": self.hidden_size, "max_length": self.max_length}

    def tokenize(self, texts: Sequence[str]) -> torch.Tensor:
        """``input_ids [B, 77]`` (padded to the tokenizer's length, truncated)."""
        texts = check_prompts(list(texts) if not isinstance(texts, str) else texts, "texts")
        if self.tokenizer is None:
            raise ZooError(f"{self.name} was built without its tokenizer files (pretrained=False): load it with weights=DIR "
                           "holding tokenizer/vocab.json and merges.txt, or attach a tokenizer (model.tokenizer = ...)")
        length = int(getattr(self.tokenizer, "model_max_length", self.max_length) or self.max_length)
        return self.tokenizer(texts, padding="max_length", max_length=min(length, self.max_length), truncation=True,
                              return_tensors="pt").input_ids

    @torch.no_grad()
    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        """Last hidden states ``[B, 77, D]`` of ``texts``."""
        ids = self.tokenize(texts)
        device = next(self.encoder.parameters()).device
        return self.encoder(ids.to(device), attention_mask=None)[0]

    def encode(self, texts: Sequence[str] | str) -> Any:
        """The hidden states as :class:`~zoo.interfaces.Latents` (all 77 positions: the padding conditions too)."""
        from zoo.interfaces import Latents

        return Latents(values=self.embed(texts).float(), tokenizer=self.name, meta={"kind": "text embeddings"})

    def decode(self, tokens: Any, **kwargs: Any) -> Any:
        raise TokenError(f"{self.name} is a text encoder: its embeddings cannot be decoded back to text")


class InstaFlow(TextToImageBase):
    """An InstaFlow / 2-Rectified Flow generator: ``generate(prompt, ...) -> images [B, 3, H, W]`` in ``[-1, 1]``."""

    def __init__(self, config: InstaFlowConfig):
        super().__init__()
        self.config = config
        self.unet = diffusers_module().UNet2DConditionModel.from_config(dict(config.unet))

    @property
    def latent_channels(self) -> int:
        return int(self.unet.config.in_channels)

    @property
    def image_size(self) -> int:
        """The trained side in pixels (``sample_size`` latents x the VAE factor)."""
        return int(self.unet.config.sample_size or 64) * self.config.vae_scale_factor

    def describe_facts(self) -> dict[str, Any]:
        return {"text": self.config.text_encoder, "vae": self.config.vae}

    def encode_prompts(self, prompts: Sequence[str], negatives: Optional[Sequence[str]]) -> torch.Tensor:
        """CLIP states of ``prompts`` (then ``negatives``, encoded apart as the pipeline does) as the UNet's dtype."""
        te: CLIPTextEncoder = self.component("text_encoder")
        states = te.embed(list(prompts))
        if negatives:
            states = torch.cat([states, te.embed(list(negatives))])
        p = next(self.unet.parameters())
        return states.to(p.device, p.dtype)

    @torch.no_grad()
    def generate(self, prompt: str | Sequence[str], negative_prompt: str | Sequence[str] | None = None, *,
                 steps: Optional[int] = None, guidance_scale: Optional[float] = None, height: Optional[int] = None,
                 width: Optional[int] = None, generator: Optional[torch.Generator] = None, seed: Optional[int] = None,
                 num_images_per_prompt: int = 1, return_latents: bool = False, progress: ProgressArg = None) -> torch.Tensor:
        """Images ``[B * num_images_per_prompt, 3, height, width]`` in ``[-1, 1]`` (``return_latents``:
        the final latents ``[B, 4, h, w]`` in the UNet's space, scaled by the VAE's 0.18215).
        Defaults from the card (InstaFlow-0.9B: 1 step, CFG off); CFG off at ``guidance_scale <= 1``."""
        prompts = check_prompts(prompt)
        steps = self.config.steps if steps is None else steps
        guidance_scale = self.config.guidance_scale if guidance_scale is None else guidance_scale
        self._check_steps_cfg(steps, guidance_scale)
        vf = self.config.vae_scale_factor
        height, width = check_size(self.image_size if height is None else height, self.image_size if width is None else width, vf)
        if isinstance(num_images_per_prompt, bool) or not isinstance(num_images_per_prompt, int) or num_images_per_prompt < 1:
            raise InputError(f"num_images_per_prompt must be a whole number >= 1, got {num_images_per_prompt!r}")
        g = self._generator(generator, seed)
        guided = guidance_scale > 1.0
        b, n = len(prompts), num_images_per_prompt
        states = self.encode_prompts(prompts, self._negatives(negative_prompt, b) if guided else None)
        if n > 1:  # prompt i's rows repeat n times in a row (the pipeline's order)
            states = states.view(-1, b, *states.shape[1:]).repeat_interleave(n, dim=1).flatten(0, 1)
        p = next(self.unet.parameters())
        noise = as_noise_source(g).randn((b * n, self.latent_channels, height // vf, width // vf), dtype=torch.float32)
        scale = self.config.num_train_timesteps

        def velocity(x: torch.Tensor, t: float, pair: bool) -> torch.Tensor:
            ts = torch.full((x.shape[0],), unet_timestep(t, scale), dtype=torch.float32, device=p.device)
            v = self.unet(x.to(p.dtype), ts, encoder_hidden_states=states if pair else states[: b * n], return_dict=False)[0]
            return -v  # the UNet's velocity points to the data (t decreasing); zoo's driver steps x - dt v

        latents = sample_flow(velocity, noise.to(p.device), steps=steps, guidance=float(guidance_scale) if guided else None,
                              progress=progress)
        if return_latents:
            return latents
        vae: DiffusersVAE = self.component("vae")
        return vae.decode_raw(vae.from_model_space(latents))
