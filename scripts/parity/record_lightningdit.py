"""Record the LightningDiT parity fixtures from hustvl/LightningDiT (a checkout in /tmp, never committed).

Writes to ``tests/fixtures/lightningdit/``:

* ``manifests.json.gz`` — ``{"xl_1": {key: [shape, dtype]}}``: the reference ``LightningDiT-XL/1``
  built on the meta device with the reproduction configs' flags (both published checkpoints,
  800 and 64 epochs, share it);
* ``cases.json`` — the small configs (zoo's :class:`LightningDiTConfig` fields), the reference's
  manifest at each, and the cases;
* ``cases.safetensors`` — per sampling case the reference's final latents (``sample_fn(z,
  model.forward_with_cfg, ...)[-1]``, first half), for each config one velocity forward, and
  one SDE run of SiT's ``Sampler.sample_sde`` (Euler-Maruyama, "sigma" diffusion, "Mean" last
  step) that checks zoo's shared ``zoo.sampling.sample_sde``.

Randomness: each case runs after ``torch.manual_seed(seed)`` and draws ``z = torch.randn(B, C, h,
w)`` first, as ``inference.py``; zoo reproduces it with ``generate(labels, seed=seed)``. Labels are
given (``inference.py`` draws them with ``torch.randint`` after ``z``). Weights come from
``zoo.testing.seeded_state_dict(manifest, seed=0)``. ``TORCHDYNAMO_DISABLE=1`` turns the
reference's ``@torch.compile`` decorators off (CPU, float32).

Usage::

    flock /tmp/zoo_heavy.lock python scripts/parity/record_lightningdit.py --lightningdit /tmp/ref/LightningDiT
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "lightningdit"
XL_FLAGS = dict(use_qknorm=False, use_swiglu=True, use_rope=True, use_rmsnorm=True, wo_shift=False)
CONFIGS = {
    "small": dict(input_size=4, patch_size=1, in_channels=8, hidden_size=64, depth=2, num_heads=4, num_classes=10, **XL_FLAGS),
    # every other architecture switch of the reference, for the forward check
    "variant": dict(input_size=4, patch_size=2, in_channels=4, hidden_size=32, depth=2, num_heads=2, num_classes=10,
                    use_qknorm=True, use_swiglu=False, use_rope=False, use_rmsnorm=False, wo_shift=True, learn_sigma=True),
}
# name: labels, seed, num_sampling_steps, cfg_scale, cfg_interval_start, timestep_shift
CASES = {
    "default_like": ([3, 7], 0, 8, 4.0, 0.125, 0.3),
    "no_cfg_uniform": ([1], 1, 6, 1.0, 0.125, 0.0),
    "cfg_everywhere": ([0, 9], 2, 5, 6.0, 0.0, 0.3),
}


SDE_CASE = dict(labels=[4, 8], seed=3, steps=12, form="sigma", norm=1.0, last_step_size=0.04)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lightningdit", required=True, help="root of a hustvl/LightningDiT checkout")
    args = ap.parse_args()
    os.environ["TORCHDYNAMO_DISABLE"] = "1"
    import torch
    from safetensors.torch import save_file

    from zoo.compat.torchvision import ensure_torchvision
    from zoo.testing.weights import seeded_state_dict, state_manifest

    ensure_torchvision()  # timm imports torchvision
    torch.set_grad_enabled(False)
    torch.set_num_threads(1)
    sys.path.insert(0, str(Path(args.lightningdit).resolve()))
    from models.lightningdit import LightningDiT, LightningDiT_models
    from transport import Sampler, create_transport

    OUT.mkdir(parents=True, exist_ok=True)
    with torch.device("meta"):
        xl = LightningDiT_models["LightningDiT-XL/1"](input_size=16, num_classes=1000, in_channels=32, **XL_FLAGS)
    manifests = {"xl_1": {k: [list(s), t] for k, (s, t) in state_manifest(xl).items()}}
    (OUT / "manifests.json.gz").write_bytes(gzip.compress(json.dumps(manifests, sort_keys=True).encode(), mtime=0))

    tensors, configs = {}, {}
    models = {}
    for name, cfg in CONFIGS.items():
        m = LightningDiT(**cfg)
        manifest = state_manifest(m)
        m.load_state_dict(seeded_state_dict(manifest, seed=0), strict=True)
        m.eval()
        models[name] = m
        configs[name] = {"config": cfg, "manifest": {k: [list(s), t] for k, (s, t) in manifest.items()}}
        g = torch.Generator().manual_seed(5)
        x = torch.randn(2, cfg["in_channels"], cfg["input_size"], cfg["input_size"], generator=g)
        t = torch.tensor([0.3, 0.8])
        y = torch.tensor([2, cfg["num_classes"]])  # a class and the null class
        tensors[f"{name}.forward.x"], tensors[f"{name}.forward.t"], tensors[f"{name}.forward.y"] = x, t, y
        tensors[f"{name}.forward.out"] = m(x, t, y).contiguous()

    transport = create_transport("Linear", "velocity", None, None, None, use_cosine_loss=True, use_lognorm=True)
    sampler = Sampler(transport)
    model = models["small"]
    cases = {}
    for case, (labels, seed, steps, cfg_scale, start, shift) in CASES.items():
        sample_fn = sampler.sample_ode(sampling_method="euler", num_steps=steps, atol=1e-6, rtol=1e-3, reverse=False,
                                       timestep_shift=shift)
        n = len(labels)
        c, s = CONFIGS["small"]["in_channels"], CONFIGS["small"]["input_size"]
        torch.manual_seed(seed)
        z = torch.randn(n, c, s, s)
        y = torch.tensor(labels)
        if cfg_scale > 1.0:
            z = torch.cat([z, z], 0)
            y = torch.cat([y, torch.tensor([CONFIGS["small"]["num_classes"]] * n)], 0)
            out = sample_fn(z, model.forward_with_cfg, y=y, cfg_scale=cfg_scale, cfg_interval=True, cfg_interval_start=start)[-1]
            out, _ = out.chunk(2, dim=0)
        else:
            out = sample_fn(z, model.forward, y=y)[-1]
        tensors[f"{case}.latents"] = out.contiguous()
        cases[case] = dict(labels=labels, seed=seed, steps=steps, guidance_scale=cfg_scale, cfg_interval_start=start,
                           timestep_shift=shift)
        print(case, tuple(out.shape), float(out.abs().mean()))
    # the shared Euler-Maruyama piece against SiT's integrator (transport.Sampler.sample_sde): "sigma" diffusion,
    # a final "Mean" step; the initial noise and every step's noise from the seeded global RNG, in that order
    sde = SDE_CASE
    sde_fn = sampler.sample_sde(sampling_method="Euler", diffusion_form=sde["form"], diffusion_norm=sde["norm"], last_step="Mean",
                                last_step_size=sde["last_step_size"], num_steps=sde["steps"])
    c, s = CONFIGS["small"]["in_channels"], CONFIGS["small"]["input_size"]
    torch.manual_seed(sde["seed"])
    z = torch.randn(len(sde["labels"]), c, s, s)
    tensors["sde.latents"] = sde_fn(z, model.forward, y=torch.tensor(sde["labels"]))[-1].contiguous()
    save_file(tensors, str(OUT / "cases.safetensors"))
    (OUT / "cases.json").write_text(json.dumps({"configs": configs, "cases": cases, "sde": sde}, indent=0, sort_keys=True) + "\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
