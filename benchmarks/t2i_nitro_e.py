"""Nitro-E: zoo's loop vs the official EMMDiTPipeline (AMD-AGI/Nitro-E) on the same shrunk random
modules (E-MMDiT at the official depth [4, 16, 4], width 128, 512 px layout with ASA: 16x16 latents;
Llama 2 layers of width 256 on 128 tokens), latents out (no VAE decode on either side), CFG as 2B rows.

    /tmp/venv_nitro/bin/python benchmarks/t2i_nitro_e.py --ref /tmp/ref_h25b --batches 1 4 --steps 4

The reference pins diffusers 0.32.2 / transformers 4.49: run this with an interpreter that has
them (e.g. a venv with ``--system-site-packages``); without ``--ref`` zoo alone is timed. The
reference pipeline hard-codes ``device='cuda'``: its source is read from ``--ref`` and executed
with that one string set to ``'cpu'`` (in memory; nothing is written). Timing as benchmarks/t2i.py
(interleaved CPU seconds, medians, 1 thread); peak memory of one generation in a fresh child
process per side. Records ``benchmarks/results/t2i_speed_nitro_e.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import types
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parent))

from _generator import interleave  # noqa: E402
from _record import add_results_option, peak_rss_mib, start  # noqa: E402

PROMPTS = ["a red fox in the snow", "an astronaut riding a horse", "a bowl of fruit", "a lazy dog on a sofa"]
SHRUNK = {"sample_size": 16, "in_channels": 32, "out_channels": 32, "attention_head_dim": 32, "num_attention_heads": 4,
          "caption_channels": 256, "caption_projection_dim": 128, "use_sub_attn": True}
LLAMA = {"hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2}


def _reference(ref: str):
    """(EMMDiTTransformer, EMMDiTPipeline) from the mirror at ``ref`` (pipeline device 'cuda' -> 'cpu', in memory)."""
    sys.path.insert(0, ref)
    from core.models.transformer_emmdit import EMMDiTTransformer

    path = Path(ref) / "core" / "models" / "emmdit_pipeline.py"
    src = path.read_text().replace("torch.device('cuda')", "torch.device('cpu')").replace("device = 'cuda'", "device = 'cpu'")
    mod = types.ModuleType("emmdit_pipeline_cpu")
    exec(compile(src, str(path), "exec"), mod.__dict__)
    return EMMDiTTransformer, mod.EMMDiTPipeline


def _sides(batch: int, steps: int, ref: str | None, guidance: float = 4.5):
    import torch

    from zoo.compat.torchvision import ensure_torchvision
    from zoo_plugins.diffusion import nitro_e_testing as T
    from zoo_plugins.diffusion.libs import transformers_module
    from zoo_plugins.diffusion.nitro_e import LlamaTextEncoder, NitroE, NitroEConfig

    ensure_torchvision()
    tf = transformers_module()
    llama = T._seed_all(tf.LlamaForCausalLM(tf.LlamaConfig(**{**{k: v for k, v in T.TINY_LLAMA.items() if k != "model_type"}, **LLAMA})), 30).eval()
    tok = T.tiny_llama_tokenizer()
    tok.pad_token = tok.eos_token
    model = NitroE(NitroEConfig(transformer=dict(SHRUNK)))
    T._seed_all(model.transformer, 32)
    model.eval().use_components(text_encoder=LlamaTextEncoder(llama.model, tok, max_length=128))
    prompts = PROMPTS[:batch]

    def zoo():
        return model.generate(prompts, steps=steps, guidance_scale=guidance, generator=torch.Generator().manual_seed(0), return_latents=True,
                              clean_caption=False)  # as the reference call

    if ref is None:
        return None, zoo
    emmdit, pipeline = _reference(ref)
    net = emmdit(**SHRUNK).eval()
    net.load_state_dict(model.transformer.state_dict())
    from diffusers import FlowMatchEulerDiscreteScheduler

    pipe = pipeline(tok, llama, None, net, FlowMatchEulerDiscreteScheduler(1000))
    pipe.set_progress_bar_config(disable=True)

    def reference():
        return pipe(prompts, num_inference_steps=steps, guidance_scale=guidance, height=512, width=512, clean_caption=False,
                    generator=torch.Generator().manual_seed(0), output_type="latent", return_dict=False)[0]

    return reference, zoo


def _status_mib(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(side: str, batch: int, steps: int, ref: str | None) -> None:
    """One generation in this fresh process after the builds; prints RSS before and the peak during it (MiB)."""
    import torch

    torch.set_num_threads(1)
    torch.set_grad_enabled(False)
    reference, zoo = _sides(batch, steps, ref if side == "ref" else None)
    before = _status_mib("VmRSS")
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    (reference if side == "ref" else zoo)()
    print(json.dumps({"before": before, "after": _status_mib("VmHWM"), "process_peak": peak_rss_mib()}))


def _child_peak(side: str, batch: int, steps: int, ref: str | None) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--child", side, "--batches", str(batch), "--steps", str(steps)] + (["--ref", ref] if ref else [])
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ref", default=None, help="a mirror of AMD-AGI/Nitro-E (core/models/...); absent: zoo alone")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 4])
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--no-memory", action="store_true")
    p.add_argument("--child", choices=["ref", "zoo"], default=None, help=argparse.SUPPRESS)
    add_results_option(p)
    args = p.parse_args()
    ref = args.ref if args.ref and (Path(args.ref) / "core" / "models" / "emmdit_pipeline.py").exists() else None
    if args.child:
        return child(args.child, args.batches[0], args.steps, ref)
    import torch

    torch.set_num_threads(1)
    torch.set_grad_enabled(False)
    if args.ref and ref is None:
        print(f"no core/models/emmdit_pipeline.py under --ref {args.ref!r}: timing zoo alone", flush=True)
    run = start("t2i_speed_nitro_e", title="nitro_e: zoo loop vs the official EMMDiTPipeline (shrunk, random weights)", kind="generator",
                threads=1, settings={k: str(v) for k, v in vars(args).items()}, results=args.results,
                reference=f"AMD-AGI/Nitro-E EMMDiTPipeline ({ref})" if ref else None)
    rows = []
    nan = {"after": float("nan"), "before": float("nan")}
    for b in args.batches:
        reference, zoo = _sides(b, args.steps, ref)
        rt, zt, (ra, za) = interleave(reference, zoo, args.reps)
        mem_zoo = nan if args.no_memory else _child_peak("zoo", b, args.steps, None)
        mem_ref = nan if args.no_memory or ref is None else _child_peak("ref", b, args.steps, ref)
        row = {"batch": b, "model": "nitro_e (shrunk)", "unit": f"images/CPU-s, batch {b}, {args.steps} steps, CFG 4.5",
               "steps": args.steps, "cfg_rows": 2 * b, "zoo_per_s": b / zt[0], "zoo_cpu_s": zt[0],
               "zoo_peak_rss_mib": mem_zoo["after"], "zoo_peak_growth_mib": mem_zoo["after"] - mem_zoo["before"]}
        if ref is not None:
            row.update({"ref_per_s": b / rt[0], "ref_cpu_s": rt[0], "speedup": rt[0] / zt[0], "speedup_wall": rt[1] / zt[1],
                        "ref_peak_rss_mib": mem_ref["after"], "ref_peak_growth_mib": mem_ref["after"] - mem_ref["before"],
                        "latents_max_abs_diff": float((ra - za).abs().max()), "latents_abs_max": float(ra.abs().max())})
        rows.append(row)
        print({k: (float(f"{v:.4g}") if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
        run.write(rows, notes=["both sides: the same E-MMDiT calls on 2B rows and the Llama encoder apart on prompts and negatives "
                               "(128 tokens each); zoo's loop is zoo.sampling.sample_flow on flow_match_sigmas (no scheduler "
                               "object); zoo's last block skips the text queries whose output the reference drops",
                               "shrunk: official depth (24 blocks), width 128 (4 heads x 32), 16x16x32 latents (512 px layout, ASA on), "
                               "Llama 2 layers of width 256; no VAE decode"])


if __name__ == "__main__":
    main()
