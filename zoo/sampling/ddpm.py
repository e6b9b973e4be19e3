"""DDPM / IDDPM ancestral sampling for small diffusion heads (MAR's per-token MLP "DiffLoss"),
with the learned-range variance of improved DDPM, timestep respacing and a temperature.

:class:`DiffusionSchedule` holds the float64 tables of the openai/guided-diffusion
``GaussianDiffusion`` (cosine or linear betas over ``diffusion_steps``, respaced with
``space_timesteps``: ``"100"`` keeps 100 of 1000 evenly, ``"ddim25"`` a DDIM stride, ``"10,15"``
per-section counts). :func:`ddpm_sample` walks the kept steps from the last to 0::

    eps, v  = model(x, t)                      (v in [-1, 1]: learned range, IDDPM)
    log_var = (v + 1)/2 * log(beta_t) + (1 - (v + 1)/2) * log(posterior_var_t)  (clipped)
    x0      = sqrt(1 / abar_t) x - sqrt(1 / abar_t - 1) eps     (optionally clipped to [-1, 1])
    mean    = c1_t x0 + c2_t x
    x       = mean + [t > 0] exp(log_var / 2) * temperature * noise

with every per-step coefficient looked up once (float64 -> float32, as the reference's
``_extract_into_tensor``) before the loop. ``t`` handed to the model is the ORIGINAL timestep
index (``timestep_map[i]``, what the reference's ``_WrappedModel`` passes).

CFG runs as ``2B`` rows (conditional first) and guides the noise prediction only (the
variance channels keep the conditional output; :func:`~zoo.sampling.cfg.cfg_channels`), the
DiT/MAR ``forward_with_cfg``. With guidance each step draws ``[2B, C]`` noise and uses the
first ``B`` rows: the reference carries a second (discarded) copy of the batch whose noise
comes from the same global stream, so drawing the same shapes keeps a seeded zoo generator on
the reference's torch stream.

Example:
    >>> import torch
    >>> sched = DiffusionSchedule.create("cosine", respacing="4")
    >>> sched.timestep_map
    [0, 333, 666, 999]
    >>> model = lambda x, t, guided: torch.cat([torch.zeros_like(x), torch.zeros_like(x)], dim=-1)
    >>> x = ddpm_sample(model, torch.ones(2, 3), sched, generator=torch.Generator().manual_seed(0), temperature=0.0)
    >>> x.shape
    torch.Size([2, 3])
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence, Union

import numpy as np
import torch

from zoo.errors import InputError
from zoo.sampling.cfg import cfg_channels
from zoo.sampling.guidance import Guidance, as_guidance
from zoo.sampling.noise import NoiseSource, as_noise_source
from zoo.sampling.progress import ProgressArg, progress_reporter

__all__ = ["BETA_SCHEDULES", "VARIANCES", "DiffusionSchedule", "named_betas", "space_timesteps", "ddpm_sample"]

BETA_SCHEDULES = ("cosine", "linear")
VARIANCES = ("learned_range", "fixed_small", "fixed_large")


def named_betas(name: str, steps: int = 1000) -> np.ndarray:
    """guided-diffusion's ``get_named_beta_schedule`` (float64): ``"linear"`` (Ho et al., scaled
    to ``steps``) or ``"cosine"`` (Nichol & Dhariwal, ``s = 0.008``, betas clipped at 0.999).

    Example:
        >>> named_betas("cosine", 4).round(4).tolist()
        [0.153, 0.417, 0.7079, 0.999]
    """
    if name == "linear":
        scale = 1000 / steps
        return np.linspace(scale * 0.0001, scale * 0.02, steps, dtype=np.float64)
    if name == "cosine":
        def abar(t: float) -> float:
            return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2
        return np.array([min(1 - abar((i + 1) / steps) / abar(i / steps), 0.999) for i in range(steps)], dtype=np.float64)
    raise InputError(f"unknown beta schedule {name!r}; choose one of {BETA_SCHEDULES}")


def space_timesteps(num_timesteps: int, section_counts: Union[str, int, Sequence[int]]) -> list[int]:
    """guided-diffusion's ``space_timesteps``: the kept steps (sorted) out of ``num_timesteps``.

    Example:
        >>> space_timesteps(10, "3"), space_timesteps(10, "ddim5")
        ([0, 4, 9], [0, 2, 4, 6, 8])
    """
    if isinstance(section_counts, str):
        if section_counts.startswith("ddim"):
            desired = int(section_counts[len("ddim"):])
            for i in range(1, num_timesteps):
                if len(range(0, num_timesteps, i)) == desired:
                    return list(range(0, num_timesteps, i))
            raise InputError(f"cannot take exactly {desired} of {num_timesteps} steps with an integer stride")
        try:
            counts = [int(x) for x in section_counts.split(",")]
        except ValueError:
            raise InputError(f"respacing must be 'N', 'N1,N2,...' or 'ddimN', got {section_counts!r}") from None
    elif isinstance(section_counts, int) and not isinstance(section_counts, bool):
        counts = [section_counts]
    else:
        counts = [int(x) for x in section_counts]
    if not counts or any(c < 1 for c in counts):
        raise InputError(f"respacing counts must be >= 1, got {counts}")
    size_per, extra = divmod(num_timesteps, len(counts))
    start, steps = 0, []
    for i, count in enumerate(counts):
        size = size_per + (1 if i < extra else 0)
        if size < count:
            raise InputError(f"cannot divide a section of {size} steps into {count}")
        stride = 1 if count <= 1 else (size - 1) / (count - 1)
        cur = 0.0
        for _ in range(count):
            steps.append(start + round(cur))
            cur += stride
        start += size
    return sorted(set(steps))


@dataclass(frozen=True)
class DiffusionSchedule:
    """Float64 tables of a (respaced) Gaussian diffusion; ``timestep_map[i]`` is the original
    timestep of kept step ``i``."""

    betas: np.ndarray
    timestep_map: list[int]

    @classmethod
    def create(cls, noise_schedule: str = "cosine", *, diffusion_steps: int = 1000,
               respacing: Union[str, int, Sequence[int], None] = None) -> "DiffusionSchedule":
        """Betas of ``noise_schedule`` respaced to the kept steps (``None``: all of them), as the
        reference's ``SpacedDiffusion`` (``beta_i = 1 - abar_i / abar_prev``)."""
        base = named_betas(noise_schedule, diffusion_steps)
        keep = list(range(diffusion_steps)) if respacing in (None, "") else space_timesteps(diffusion_steps, respacing)
        abar = np.cumprod(1.0 - base)
        last, betas = 1.0, []
        for i in keep:
            betas.append(1 - abar[i] / last)
            last = abar[i]
        return cls(np.array(betas, dtype=np.float64), keep)

    @property
    def num_steps(self) -> int:
        return len(self.betas)

    def tables(self) -> dict[str, np.ndarray]:
        """The float64 coefficient tables (names as guided-diffusion's attributes)."""
        betas = self.betas
        abar = np.cumprod(1.0 - betas)
        abar_prev = np.append(1.0, abar[:-1])
        post_var = betas * (1.0 - abar_prev) / (1.0 - abar)
        post_log = np.log(np.append(post_var[1], post_var[1:])) if len(post_var) > 1 else np.log(np.maximum(post_var, 1e-20))
        return {
            "sqrt_recip_alphas_cumprod": np.sqrt(1.0 / abar),
            "sqrt_recipm1_alphas_cumprod": np.sqrt(1.0 / abar - 1),
            "posterior_mean_coef1": betas * np.sqrt(abar_prev) / (1.0 - abar),
            "posterior_mean_coef2": (1.0 - abar_prev) * np.sqrt(1.0 - betas) / (1.0 - abar),
            "posterior_variance": post_var,
            "posterior_log_variance_clipped": post_log,
            "log_betas": np.log(betas),
            "fixed_large_log_variance": np.log(np.append(post_var[1], betas[1:])) if len(betas) > 1 else np.log(betas),
        }


@torch.no_grad()
def ddpm_sample(
    model_fn: Callable[[torch.Tensor, int, bool], torch.Tensor],
    noise: torch.Tensor,
    schedule: DiffusionSchedule,
    *,
    generator: Union[torch.Generator, NoiseSource, None],
    temperature: float = 1.0,
    guidance: Union[Guidance, float, None] = None,
    variance: str = "learned_range",
    clip_denoised: bool = False,
    progress: ProgressArg = None,
) -> torch.Tensor:
    """Ancestral sampling from ``noise`` ``[N, C, ...]`` down the kept steps; returns ``x_0``.

    Args:
        model_fn: ``model(x, t, guided)``: ``x`` ``[N, C, ...]`` (``[2N]`` rows, the states
            twice, when ``guided``), ``t`` the original timestep index (an int); returns
            ``[rows, 2C, ...]`` (``eps | v``) for ``"learned_range"``, ``[rows, C, ...]`` else.
        generator: the source of every draw (one per step, including the last, whose noise is
            multiplied by 0, as the reference draws it).
        temperature: scales the per-step noise (MAR's ``temperature``).
        guidance: CFG weight ``w`` (constant over the diffusion steps; MAR ramps it per AR step).
        variance: ``"learned_range"`` (IDDPM), ``"fixed_small"`` or ``"fixed_large"``.
    """
    if variance not in VARIANCES:
        raise InputError(f"unknown variance type {variance!r}; choose one of {VARIANCES}")
    if not math.isfinite(float(temperature)) or temperature < 0:
        raise InputError(f"temperature must be a finite number >= 0, got {temperature!r}")
    src = as_noise_source(generator, noise.device)
    g = as_guidance(guidance)
    guided = g.active
    tab = schedule.tables()
    n, c = noise.shape[0], noise.shape[1]
    x = noise.to(torch.float32)
    bcast = (1,) * (x.dim() - 1)

    def coef(name: str, i: int) -> torch.Tensor:  # float64 table -> float32 scalar, as _extract_into_tensor
        return torch.tensor(tab[name][i], dtype=torch.float64).float().to(x.device).reshape(bcast)

    steps = list(range(schedule.num_steps))[::-1]
    consts = {i: {k: coef(k, i) for k in ("sqrt_recip_alphas_cumprod", "sqrt_recipm1_alphas_cumprod",
                                          "posterior_mean_coef1", "posterior_mean_coef2",
                                          "posterior_log_variance_clipped", "log_betas", "posterior_variance",
                                          "fixed_large_log_variance")} for i in steps}
    w = g.weight(0, 1) if guided else 1.0
    report = progress_reporter(progress, len(steps), "diffusion")
    try:
        for done, i in enumerate(steps):
            k = consts[i]
            t = schedule.timestep_map[i]
            if guided:
                out = model_fn(torch.cat([x, x], dim=0), t, True).float()
                out = cfg_channels(out, w, slice(0, c))  # noise prediction only; variance: conditional rows
            else:
                out = model_fn(x, t, False).float()
            if variance == "learned_range":
                if out.shape[1] != 2 * c:
                    raise InputError(f"a learned-range model returns 2C = {2 * c} channels (eps | v), got {out.shape[1]}")
                eps, v = out[:, :c], out[:, c:]
                frac = (v + 1) / 2
                log_var = frac * k["log_betas"] + (1 - frac) * k["posterior_log_variance_clipped"]
            else:
                eps = out[:, :c]
                log_var = k["posterior_log_variance_clipped"] if variance == "fixed_small" else k["fixed_large_log_variance"]
            x0 = k["sqrt_recip_alphas_cumprod"] * x - k["sqrt_recipm1_alphas_cumprod"] * eps
            if clip_denoised:
                x0 = x0.clamp(-1, 1)
            mean = k["posterior_mean_coef1"] * x0 + k["posterior_mean_coef2"] * x
            z = src.randn((2 * n if guided else n,) + tuple(x.shape[1:]), device=x.device)[:n]
            if i != 0:
                x = mean + torch.exp(0.5 * log_var) * z * temperature
            else:
                x = mean
            report(done + 1)
    finally:
        report.close()
    return x
