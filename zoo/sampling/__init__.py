"""Shared generation machinery: logits processors, CFG, a static KV cache and three drivers.

* :func:`generate_ar` — autoregressive, static KV cache, prefill + decode steps, CFG as 2B rows;
* :func:`generate_maskgit` — MaskGIT parallel decoding with confidence re-masking;
* :func:`sample_flow` — rectified-flow ODE sampling (Euler/Heun, time shift or an explicit time
  grid, CFG with a guidance interval / channel subset, APG);
* :func:`flow_match_sigmas` — the time grid of diffusers' ``FlowMatchEulerDiscreteScheduler``
  (static or ``mu`` shift), number for number, for :func:`sample_flow` (SD3, InstaFlow);
  :func:`scheduler_sigmas` reads a scheduler config (dynamic shifting from the image's token count);
* :class:`SkipLayerGuidance` — SD3.5's skip-layer guidance, an extra term on guided flow steps;
* :func:`sample_sde` — Euler-Maruyama SDE sampling with a final mean step (SiT/xAR);
* :func:`ddpm_sample` — DDPM/IDDPM ancestral sampling (learned variance, respacing, temperature)
  for small diffusion heads (MAR);
* :func:`generate_blocks` — the block-wise AR outer loop (MAR's random-order sets, xAR's cells,
  FlowAR/VAR's scales) with CFG ramped by block or by generated fraction.

Each driver is fed by one small plugin function and takes a ``torch.Generator`` for every
random draw; nothing is stored on modules, so generations may interleave in one process.

Example:
    >>> from zoo.sampling import Guidance, weight_from_cond_scale
    >>> Guidance(weight_from_cond_scale(3.0)).weight(0, 8)
    4.0
"""

from zoo.sampling.ar import ARSample, ARStep, generate_ar
from zoo.sampling.blocks import (
    Block,
    cell_blocks,
    generate_blocks,
    masked_set_blocks,
    masked_set_counts,
    random_orders,
    range_blocks,
    scale_blocks,
)
from zoo.sampling.cfg import RAMPS, SkipLayerGuidance, as_skip_layer_guidance, cfg_channels, in_interval, ramp_progress
from zoo.sampling.ddpm import DiffusionSchedule, ddpm_sample, space_timesteps
from zoo.sampling.flow import SOLVERS, flow_timesteps, sample_flow, shift_time, time_grid
from zoo.sampling.flow_match import dynamic_shift_mu, flow_match_sigmas, flow_match_timestep, scheduler_sigmas
from zoo.sampling.guidance import (
    APG,
    SCHEDULES,
    Guidance,
    apg_combine,
    as_guidance,
    cfg_combine,
    cond_scale_from_weight,
    weight_from_cond_scale,
)
from zoo.sampling.kv_cache import StaticKVCache
from zoo.sampling.logits import (
    SamplerSettings,
    add_gumbel_noise,
    gumbel_noise,
    min_p,
    own_generator,
    repetition_penalty,
    sample,
    temperature_scale,
    top_k,
    top_p,
)
from zoo.sampling.maskgit import MASK_SCHEDULES, generate_maskgit, mask_ratio
from zoo.sampling.noise import GeneratorNoise, NoiseSource, ReplayNoise, as_noise_source
from zoo.sampling.output import Generation
from zoo.sampling.progress import progress_reporter
from zoo.sampling.sde import linear_path_sde, sample_sde, sde_time_grid

__all__ = [
    "APG", "ARSample", "Generation", "ARStep", "Guidance", "MASK_SCHEDULES", "SCHEDULES", "SOLVERS", "SamplerSettings",
    "StaticKVCache", "add_gumbel_noise", "apg_combine", "as_guidance", "cfg_combine", "cond_scale_from_weight",
    "flow_timesteps", "generate_ar", "generate_maskgit", "gumbel_noise", "mask_ratio", "min_p", "own_generator", "progress_reporter",
    "repetition_penalty", "sample", "sample_flow", "shift_time", "temperature_scale", "top_k", "top_p",
    "weight_from_cond_scale",
    # continuous-token generators (issue 19)
    "Block", "DiffusionSchedule", "GeneratorNoise", "NoiseSource", "RAMPS", "ReplayNoise", "as_noise_source",
    "cell_blocks", "cfg_channels", "ddpm_sample", "generate_blocks", "in_interval", "linear_path_sde",
    "masked_set_blocks", "masked_set_counts", "ramp_progress", "random_orders", "range_blocks", "sample_sde",
    "scale_blocks", "sde_time_grid", "space_timesteps", "time_grid",
    # diffusers flow-matching grids (issue 25)
    "flow_match_sigmas", "flow_match_timestep", "dynamic_shift_mu", "scheduler_sigmas", "SkipLayerGuidance", "as_skip_layer_guidance",
]
