"""FlexTok: reference (apple/ml-flextok) vs zoo, same weights and inputs, one run.

    PYTHONPATH=.:/tmp/pylib_flextok nice -n 5 python benchmarks/flextok.py --ref /tmp/ref/flextok \
        --size d12_d12 --batch 1 8 --steps 20 --reps 3 1

Times full encodes and full decodes (``--steps`` Euler steps with CFG ``--cfg`` and norm
guidance, the reference README's defaults; nothing extrapolated), reference and zoo
interleaved (ref, zoo, ref, zoo, ...), ``--reps`` repetitions per batch size (one number per
``--batch``, or one for all), and prints medians of process CPU seconds, split into VAE encode /
transformer encode / FSQ and decoder steps / VAE decode, plus images/s and zoo/reference
ratios, after one untimed warm-up (a 1-step decode). The first repetition checks that both
produce the same ids and the same decoded latents. ``--profile`` prints torch.profiler tables
(self CPU time per op) of one encode and a 2-step decode for each side. ``--bf16`` adds zoo
with the whole model in bfloat16 (opt-in, inexact; ratios are reference / bf16). Without
``--ref`` only zoo runs. Weights are random (seeded per key) in the official layout at the
reconstructed published size.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import torch
from _record import add_results_option, start

CLOCK = time.process_time  # CPU seconds: on a shared machine wall time measures the neighbours


def timed(fn):
    """(result, seconds of CLOCK) of one call."""
    t0 = CLOCK()
    out = fn()
    return out, CLOCK() - t0


def build_zoo(size: str, seed: int):
    from zoo_plugins.flextok.model import FlexTok
    from zoo_plugins.flextok.testing import published_config

    from zoo.testing.weights import seeded_state_dict, state_manifest
    from zoo.weights import no_init

    cfg = published_config(size)
    cfg.vae.scaling_factor = 0.9
    with no_init():
        model = FlexTok(cfg)
    sd = seeded_state_dict(state_manifest(model), seed=seed)
    model.load_state_dict(sd, strict=True)
    return model.eval(), cfg, sd


def build_reference(ref: Path, cfg, sd):
    sys.path.insert(0, str(ref))
    from zoo.compat.torchvision import ensure_torchvision

    ensure_torchvision()
    from hydra.utils import instantiate
    from zoo_plugins.flextok.export import to_metadata

    model = instantiate(to_metadata(cfg)).eval()
    for m in model.modules():  # the reference's own SDPA fallback (no flex_attention compiler on CPU)
        if hasattr(m, "use_flex_attention"):
            m.use_flex_attention = False
        if hasattr(m, "return_materialized_mask"):
            m.return_materialized_mask, m.compile_block_mask = True, False
    model.load_state_dict(sd, strict=True)
    return model


def ref_decode_latents(ref, token_list, steps, cfg_scale, apg, seed, size):
    g = torch.Generator().manual_seed(seed)
    d = ref._prepare_data_dict_for_detokenization(token_list)
    d = ref.pipeline(d, generator=g, timesteps=steps, vae_image_sizes=size, verbose=False,
                     guidance_scale=cfg_scale, perform_norm_guidance=apg)
    return d


def zoo_stages(model, x, toks, steps, cfg_scale, apg, seed, lat, dec_ids=None):
    """Zoo's encode and decode split into timed stages: ({stage: seconds}, ids, latents, images).
    ``dec_ids``: decode these ids instead of the ones just encoded."""
    t = {}
    latents, t["vae encode"] = timed(lambda: model.encode_latents(x))
    z, t["transformer encode"] = timed(lambda: model.encoder(latents.to(model.dtype)))
    (_, ids), t["FSQ"] = timed(lambda: model.regularizer(z))
    t["encode total"] = t["vae encode"] + t["transformer encode"] + t["FSQ"]
    zl, t["decoder steps"] = timed(lambda: model.decode_latents(
        toks(ids if dec_ids is None else dec_ids), steps=steps, guidance_scale=cfg_scale, norm_guidance=apg,
        generator=torch.Generator().manual_seed(seed), latent_size=lat))
    img, t["vae decode"] = timed(lambda: model.vae.decode(zl))
    t["decode total"] = t["decoder steps"] + t["vae decode"]
    return t, ids, zl, img


def ref_stages(ref, x, toks, steps, cfg_scale, apg, seed, lat):
    """The reference's encode (``tokenize``) and decode (``detokenize``) split the same way."""
    t = {}
    d = {ref.vae.images_read_key: x.split(1)}
    d, t["vae encode"] = timed(lambda: ref.vae.encode(d))
    d, t["transformer encode"] = timed(lambda: ref.encoder(d))
    d, t["FSQ"] = timed(lambda: ref.regularizer(d))
    t["encode total"] = t["vae encode"] + t["transformer encode"] + t["FSQ"]
    ids = torch.cat(d[ref.token_write_key])
    d, t["decoder steps"] = timed(lambda: ref_decode_latents(ref, toks(ids), steps, cfg_scale, apg, seed, lat))
    zl = torch.cat(d["vae_latents_reconst"])
    d, t["vae decode"] = timed(lambda: ref.vae.decode(d))
    t["decode total"] = t["decoder steps"] + t["vae decode"]
    return t, ids, zl, torch.cat(d[ref.image_write_key])


def profile_table(fn, rows: int = 12) -> str:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ref", type=Path, default=None)
    ap.add_argument("--size", default="d12_d12")
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--reps", type=int, nargs="+", default=[3, 1],
                    help="interleaved repetitions per batch size (one value, or one per --batch)")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--cfg", type=float, default=7.5)
    ap.add_argument("--no-apg", action="store_true")
    ap.add_argument("--image-size", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--bf16", action="store_true",
                    help="also time zoo with the whole model in bfloat16 (opt-in and inexact: "
                         "zoo.load('flextok', dtype='bf16')), decoding the float32 ids")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--clock", choices=["cpu", "wall"], default="cpu",
                    help="cpu: process CPU seconds (default; fair on a shared machine with --threads 1)")
    add_results_option(ap)
    args = ap.parse_args()
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    torch.set_num_threads(args.threads)
    apg = not args.no_apg
    reps = args.reps * len(args.batch) if len(args.reps) == 1 else args.reps
    if len(reps) != len(args.batch):
        ap.error(f"--reps takes one value or one per --batch ({len(args.batch)}), got {len(reps)}")

    model, cfg, sd = build_zoo(args.size, args.seed)
    checks = []  # parity and bf16 differences, for the JSON record
    ref = None
    if args.ref is not None and (args.ref / "flextok").is_dir():
        ref = build_reference(args.ref, cfg, sd)
    elif args.ref is not None:
        print(f"reference not found at {args.ref}: timing zoo only")
    del sd
    run = start("flextok", title=f"FlexTok {args.size} encode/decode", kind="tokenizer", threads=args.threads,
                settings=vars(args), reference=args.ref if ref is not None else None, results=args.results)
    model16 = copy.deepcopy(model).to(torch.bfloat16) if args.bf16 else None
    lat = args.image_size // 8
    g = torch.Generator().manual_seed(1)
    images = torch.rand(max(args.batch), 3, args.image_size, args.image_size, generator=g) * 2 - 1
    common = (args.steps, args.cfg, apg, args.seed, lat)

    stages = ["vae encode", "transformer encode", "FSQ", "encode total", "decoder steps", "vae decode", "decode total"]
    results = []
    with torch.inference_mode():
        for b, n_rep in zip(args.batch, reps):
            x = images[:b]
            keeps = [max(1, 256 >> (i % 9)) for i in range(b)]  # ragged prefixes, as a user would truncate

            def toks(ids, keeps=keeps):
                return [ids[i : i + 1, :k] for i, k in enumerate(keeps)]

            if b == args.batch[0]:  # untimed warm-up (first-call allocations, oneDNN primitives)
                for fn in ([ref_stages] if ref is not None else []) + [zoo_stages]:
                    fn(ref if fn is ref_stages else model, x, toks, 1, *common[1:])
            zt, rt, bt = [], [], []
            for rep in range(n_rep):
                if ref is not None:
                    t, rids, rl, rimg = ref_stages(ref, x, toks, *common)
                    rt.append(t)
                t, ids, zl, zimg = zoo_stages(model, x, toks, *common)
                zt.append(t)
                if model16 is not None:
                    t16, ids16, _, img16 = zoo_stages(model16, x, toks, *common, dec_ids=ids)
                    bt.append(t16)
                    if rep == 0:
                        checks.append({"batch": b, "check": "bf16 vs float32 zoo",
                                       "ids_equal_fraction": float((ids16 == ids).float().mean()),
                                       "max_abs_diff": float((img16.float() - zimg).abs().max())})
                        print(f"batch {b}: bf16 ids equal to float32 {checks[-1]['ids_equal_fraction']:.3f}, "
                              f"bf16 images max|diff| vs float32 {checks[-1]['max_abs_diff']:.2e}", flush=True)
                if ref is not None and rep == 0:
                    assert torch.equal(rids, ids), "encode: zoo and reference ids differ"
                    err = float((zl - rl).abs().max())
                    assert err < 1e-3, f"decode: zoo and reference latents differ by {err}"
                    checks.append({"batch": b, "check": "zoo vs reference", "ids_equal_fraction": 1.0,
                                   "max_abs_diff": err, "tolerance": 1e-3})
                    print(f"batch {b}: ids equal; decoded latents max|diff| {err:.2e}, "
                          f"images max|diff| {float((zimg - rimg).abs().max()):.2e}", flush=True)
                print(f"batch {b} rep {rep}: zoo encode {t['encode total']:.2f}s decode {t['decode total']:.2f}s"
                      + (f" | ref encode {rt[-1]['encode total']:.2f}s decode {rt[-1]['decode total']:.2f}s" if rt else ""),
                      flush=True)
            med = {k: statistics.median(r[k] for r in zt) for k in stages}
            rmed = {k: statistics.median(r[k] for r in rt) for k in stages} if rt else None
            bmed = {k: statistics.median(r[k] for r in bt) for k in stages} if bt else None
            results.append((b, n_rep, med, rmed, bmed))

        if args.profile:
            x = images[:1]

            def toks1(ids):
                return [ids[:1]]

            for name, fn in [("zoo", lambda: zoo_stages(model, x, toks1, 2, *common[1:]))] + (
                    [("reference", lambda: ref_stages(ref, x, toks1, 2, *common[1:]))] if ref is not None else []):
                print(f"\n-- {name}: one encode + a 2-step decode, batch 1, self CPU time per op")
                print(profile_table(fn))

    print(f"\nFlexTok {args.size}, {args.image_size}px, decode {args.steps} steps, CFG {args.cfg}"
          f"{' + APG' if apg else ''}, {args.threads} thread(s), {args.clock} clock (median seconds), "
          f"torch {torch.__version__}")
    print("decode tokens per image: 256, 128, 64, ... (ragged prefixes); ids and decoded latents checked equal")
    for b, n_rep, med, rmed, bmed in results:
        print(f"\nbatch {b} ({n_rep} interleaved rep(s))")
        print(f"{'stage':20} {'zoo s':>9} {'ref s':>9} {'ratio':>6}" + (f" {'bf16 s':>9} {'ratio':>6}" if bmed else ""))
        for k in stages:
            r = f"{rmed[k]:9.2f} {rmed[k] / med[k]:6.2f}" if rmed else f"{'n/a':>9} {'n/a':>6}"
            if bmed:
                r += f" {bmed[k]:9.2f} " + (f"{rmed[k] / bmed[k]:6.2f}" if rmed else f"{'n/a':>6}")
            print(f"{k:20} {med[k]:9.2f} {r}")
    print(f"\n{'op':8} {'batch':>5} {'zoo img/s':>10} {'ref img/s':>10} {'ratio':>6}")
    for b, _, med, rmed, _ in results:
        for op in ("encode", "decode"):
            tz = med[f"{op} total"]
            tr = rmed[f"{op} total"] if rmed else None
            ri = f"{b / tr:10.4f} {tr / tz:6.2f}" if tr else f"{'n/a':>10} {'n/a':>6}"
            print(f"{op:8} {b:5d} {b / tz:10.4f} {ri}")
    rows = []
    for b, n_rep, med, rmed, bmed in results:
        for op in ("encode", "decode"):
            tz, tr = med[f"{op} total"], (rmed[f"{op} total"] if rmed else None)
            tb = bmed[f"{op} total"] if bmed else None
            rows.append({"model": f"flextok {args.size}", "op": op, "batch": b, "reps": n_rep, "unit": "img/s",
                         "zoo_s": tz, "ref_s": tr, "zoo_per_s": b / tz, "ref_per_s": b / tr if tr else None,
                         "speedup": tr / tz if tr else None, "bf16_s": tb,
                         "stages_zoo_s": med, "stages_ref_s": rmed})
    setting = (f"{args.image_size}px images, decode {args.steps} Euler steps, CFG {args.cfg}"
               f"{' + APG' if apg else ''}; ragged prefixes 256, 128, 64, ... tokens per image")
    run.write(rows, notes=[setting,
                           f"{args.clock} clock; speedup = reference seconds / zoo seconds"], extra={"checks": checks})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
