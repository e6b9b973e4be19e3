"""VAR generation speed: zoo vs FoundationVision/VAR on the same weights, labels and seed, in one
run (interleaved repetitions, medians of CPU seconds; the machine is shared).

Default: VAR-d16 at full size (16 x 1024, 10 scales, 680 tokens) with the full-size VQVAE
(ch 160), the README's FID sampler settings (cfg 1.5 -> zoo guidance_scale 2.5, top_k 900,
top_p 0.96), CFG as 2B rows in both, images decoded in both. Weights are random (regenerated per
key, the reference layout, converted for zoo); the run also reports whether the ids agree
(same seed -> same generator stream).

Reported per batch: images/s from CPU time for the reference and zoo, the ratio, where the time
goes in zoo (transformer vs VQVAE decode), the transformer's GFLOP and its share of this CPU's
fp32 matmul peak (a GEMM at the transformer's shape, measured in the same run).

Usage:
    flock /tmp/zoo_heavy.lock python benchmarks/var.py --ref /tmp/ref_h19b/VAR [--depth 16] [--batches 1 8] [--reps 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parent))  # _record, also under `python -P` (see Usage)

import torch  # noqa: E402
from _generator import gemm_peak, timed  # noqa: E402
from _record import add_results_option, start  # noqa: E402

PN = (1, 2, 3, 4, 5, 6, 8, 10, 13, 16)


def transformer_gflop(batch: int, depth: int, d: int, vocab: int, scales=PN, guided: bool = True) -> float:
    """Matmul GFLOP of one generation's transformer passes (QKV/proj/MLP/head and attention)."""
    rows = (2 if guided else 1) * batch
    total, seen = 0.0, 0
    for p in scales:
        n = p * p
        seen += n
        total += rows * n * (depth * (2 * 12 * d * d + 4 * seen * d) + 2 * d * vocab)
    return total / 1e9


def build(ref: Path | None, depth: int):
    from zoo_plugins.var.builder import vae_from_reference, var_from_reference
    from zoo_plugins.var.config import VARConfig, VQVAEConfig
    from zoo_plugins.var.model import VAR
    from zoo_plugins.var.vqvae import VARVQVAE

    from zoo.testing.weights import seeded_state_dict, state_manifest
    from zoo.weights import no_init

    vcfg = VQVAEConfig()
    cfg = VARConfig(depth=depth, embed_dim=64 * depth, num_heads=depth)
    with no_init():
        zvae, zvar = VARVQVAE(vcfg).eval(), VAR(cfg).eval()
    rvae = rvar = None
    if ref is not None:
        sys.path.insert(0, str(ref))
        from models.var import VAR as RefVAR  # noqa: PLC0415 - the reference
        from models.vqvae import VQVAE  # noqa: PLC0415

        rvae = VQVAE(vocab_size=4096, z_channels=32, ch=160, test_mode=True, share_quant_resi=4)
        rvar = RefVAR(rvae, num_classes=1000, depth=depth, embed_dim=64 * depth, num_heads=depth, norm_eps=1e-6, shared_aln=False,
                      cond_drop_rate=0.1, attn_l2_norm=True, patch_nums=PN, flash_if_available=False, fused_if_available=False).eval()
        vsd = seeded_state_dict(state_manifest(rvae))
        rvae.load_state_dict(vsd, strict=True)
        sd = seeded_state_dict(state_manifest(rvar))
        sd.update(dict(rvar.named_buffers()))
        rvar.load_state_dict(sd, strict=True)
    else:  # zoo alone: zoo's own layout, seeded
        zvae.load_state_dict(seeded_state_dict(state_manifest(zvae)), strict=True)
        zvar.load_state_dict(seeded_state_dict(state_manifest(zvar)), strict=True)
        return zvae, zvar, None, None
    zvae.load_state_dict(vae_from_reference(vsd, vcfg), strict=True)
    zvar.load_state_dict(var_from_reference(sd), strict=True)
    return zvae, zvar, rvae, rvar


NOTES = ["images/s from CPU seconds (time.process_time), 1 thread, medians of interleaved runs",
         "transformer share: zoo with return_latents=True (no VQVAE decode); % of peak: transformer matmul "
         "GFLOP / its CPU seconds over an fp32 GEMM at [2*8*169, d] x [d, 4d] measured in the same run"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ref", type=Path, default=None, help="root of a FoundationVision/VAR checkout (omit: zoo alone)")
    ap.add_argument("--depth", type=int, default=16)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    add_results_option(ap)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    run = start("var", title="VAR generation (next-scale AR + VQVAE decode)", kind="generator", threads=args.threads, settings={k: str(v) for k, v in vars(args).items()},
                reference=str(args.ref) if args.ref else None, results=args.results)
    zvae, zvar, rvae, rvar = build(args.ref, args.depth)
    d = 64 * args.depth
    cfg_ref, top_k, top_p, seed = 1.5, 900, 0.96, 0
    peak = gemm_peak(2 * 8 * 169, d, 4 * d)
    rows = []
    for b in args.batches:
        labels = [(207 + 100 * i) % 1000 for i in range(b)]

        def zoo_fn(labels=labels):
            return zvar.generate(labels, guidance_scale=1 + cfg_ref, top_k=top_k, top_p=top_p, seed=seed, tokenizer=zvae)

        def zoo_tokens(labels=labels):
            return zvar.generate(labels, guidance_scale=1 + cfg_ref, top_k=top_k, top_p=top_p, seed=seed, tokenizer=zvae,
                                 return_latents=True)

        def ref_fn(b=b, labels=labels):
            return rvar.autoregressive_infer_cfg(B=b, label_B=torch.tensor(labels), g_seed=seed, cfg=cfg_ref, top_k=top_k, top_p=top_p)

        reps = args.reps if b == args.batches[0] else 1
        if b == args.batches[0]:  # warm-up once, at the first batch size
            zoo_fn()
            if rvar is not None:
                ref_fn()
        zc, zw, rc, rw, tc = [], [], [], [], []
        for _ in range(reps):
            if rvar is not None:
                c, w, rimg = timed(ref_fn)
                rc.append(c), rw.append(w)
            c, w, out = timed(zoo_fn)
            zc.append(c), zw.append(w)
            c, _, _ = timed(zoo_tokens)
            tc.append(c)
        med = statistics.median
        gflop = transformer_gflop(b, args.depth, d, 4096)
        row = {"batch": b, "model": f"VAR-d{args.depth} + VQVAE ch160 (256 px, 10 scales, cfg 1.5, top-k 900, top-p 0.96)",
               "zoo_images_per_s": b / med(zc), "ref_images_per_s": b / med(rc) if rc else None,
               "speedup_cpu": med(rc) / med(zc) if rc else None, "speedup_wall": med(rw) / med(zw) if rw else None,
               "zoo_cpu_s": med(zc), "ref_cpu_s": med(rc) if rc else None, "zoo_transformer_cpu_s": med(tc),
               "zoo_decode_cpu_s": med(zc) - med(tc), "transformer_gflop": gflop,
               "transformer_gflops_achieved": gflop / med(tc), "matmul_peak_gflops": peak,
               "transformer_pct_of_peak": 100 * gflop / med(tc) / peak}
        if rvar is not None:
            row["images_max_abs_diff"] = float(((out.media + 1) / 2 - rimg).abs().max())
        rows.append(row)
        print({k: (float(f"{v:.4g}") if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
        run.write(rows, notes=NOTES)  # after every batch size: a run cut short keeps what it measured
    run.write(rows, notes=NOTES)



if __name__ == "__main__":
    main()
