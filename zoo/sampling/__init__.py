"""Shared generation machinery: logits processors, CFG, a static KV cache and three drivers.

* :func:`generate_ar` — autoregressive, static KV cache, prefill + decode steps, CFG as 2B rows;
* :func:`generate_maskgit` — MaskGIT parallel decoding with confidence re-masking;
* :func:`sample_flow` — rectified-flow ODE sampling (Euler/Heun, time shift, CFG, APG).

Each driver is fed by one small plugin function and takes a ``torch.Generator`` for every
random draw; nothing is stored on modules, so generations may interleave in one process.

Example:
    >>> from zoo.sampling import Guidance, weight_from_cond_scale
    >>> Guidance(weight_from_cond_scale(3.0)).weight(0, 8)
    4.0
"""

from zoo.sampling.ar import ARSample, ARStep, generate_ar
from zoo.sampling.flow import SOLVERS, flow_timesteps, sample_flow, shift_time
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
from zoo.sampling.output import Generation
from zoo.sampling.progress import progress_reporter

__all__ = [
    "APG", "ARSample", "Generation", "ARStep", "Guidance", "MASK_SCHEDULES", "SCHEDULES", "SOLVERS", "SamplerSettings",
    "StaticKVCache", "add_gumbel_noise", "apg_combine", "as_guidance", "cfg_combine", "cond_scale_from_weight",
    "flow_timesteps", "generate_ar", "generate_maskgit", "gumbel_noise", "mask_ratio", "min_p", "own_generator", "progress_reporter",
    "repetition_penalty", "sample", "sample_flow", "shift_time", "temperature_scale", "top_k", "top_p",
    "weight_from_cond_scale",
]
