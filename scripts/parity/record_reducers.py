"""Record the reducers' parity fixtures by running the reference implementations.

Runs the original ToMe patch, DiffRate patch, EViT model, MCTF model and DivPrune selection (each from a
path given on the command line; a missing one is skipped) on timm models whose weights are
regenerated from ``zoo.testing.seeded_state_dict`` and on seeded inputs, and writes only the
outputs (features, token sources, kept indices) to ``tests/fixtures/reducers/``.

    python scripts/parity/record_reducers.py --tome /tmp/ref/tome --diffrate /tmp/ref/diffrate \
        --evit /tmp/ref/evit --mctf /tmp/ref/mctf --divprune /tmp/ref/divprune

The cases themselves live in ``tests/plugins/reducers/parity_cases.py`` so the tests rebuild the
same models and inputs.

Post-encoder section (MMTok, HiPrune, DyMU; cases in ``post_encoder_cases.py``): each reference's
selection / merging functions are taken from its source files at record time and run on seeded
tensors (the full VLMs need LLaVA / CUDA):

    python scripts/parity/record_reducers.py --mmtok /tmp/ref/mmtok --hiprune /tmp/ref/hiprune \
        --dymu /tmp/ref/dymu        # DyMU's tome.py needs einops on PYTHONPATH
"""

from __future__ import annotations

import argparse
import ast
import importlib
import json
import sys
import types
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "plugins" / "reducers"))

import parity_cases as pc  # noqa: E402  (found through the sys.path entry above)
import post_encoder_cases as pec  # noqa: E402

OUT = ROOT / "tests" / "fixtures" / "reducers"


def _with_path(path: Path):
    sys.path.insert(0, str(path))


def _rounded(t: torch.Tensor) -> list:
    return [float(f"{v:.7g}") for v in t.flatten().tolist()]


def _summary(feats: torch.Tensor, head: int = 4) -> dict:
    """Small, still telling: the first ``head`` tokens and the token mean of the features
    (flattened, 7 significant digits)."""
    return {"shape": list(feats.shape), "head": _rounded(feats[:, :head]), "mean": _rounded(feats.mean(dim=1))}


def _features(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``forward_features`` output captured from a full forward (the reference patches reset
    their per-run state in ``forward`` only)."""
    got = []
    hook = model.norm.register_forward_hook(lambda m, i, o: got.append(o))
    try:
        with torch.no_grad():
            model(x)
    finally:
        hook.remove()
    return got[-1]


def record_tome(ref: Path, out: dict) -> None:
    _with_path(ref)
    import tome  # the reference package

    for case in pc.TOME_CASES:
        model, x = pc.build_timm(case)
        tome.patch.timm(model, trace_source=True, prop_attn=case["prop_attn"])
        model.r = tuple(case["r"]) if isinstance(case["r"], list) and len(case["r"]) == 2 and isinstance(case["r"][1], float) else case["r"]
        feats = _features(model, x)
        source = model._tome_info["source"]
        out[case["id"]] = {**_summary(feats), "sizes": model._tome_info["size"][..., 0].tolist(),
                           "source": source.argmax(dim=1).tolist()}
        print("tome", case["id"], tuple(feats.shape))


def record_diffrate(ref: Path, out: dict) -> None:
    _with_path(ref)
    # import DiffRate.patch.deit without the package __init__ (it pulls in a CAFormer module
    # written against an old timm)
    for pkg, sub in (("DiffRate", "DiffRate"), ("DiffRate.patch", "DiffRate/patch")):
        mod = types.ModuleType(pkg)
        mod.__path__ = [str(ref / sub)]
        sys.modules[pkg] = mod
    dr_deit = importlib.import_module("DiffRate.patch.deit")

    for case in pc.DIFFRATE_CASES:
        model, x = pc.build_timm(case)
        for blk in model.blocks:  # the reference predates timm's drop_path1/2 split
            blk.drop_path = torch.nn.Identity()
        dr_deit.apply_patch(model, trace_source=True)
        prune, merge = pc.diffrate_schedule(case)
        model.set_kept_num(prune, merge)
        model.eval()
        feats = _features(model, x)
        out[case["id"]] = {
            **_summary(feats),
            "sizes": model._diffrate_info["size"][..., 0].tolist(),
            "source": model._diffrate_info["source"].argmax(dim=1).tolist(),
        }
        print("diffrate", case["id"], tuple(feats.shape))


def record_evit(ref: Path, out: dict) -> None:
    built = [pc.build_timm(case) for case in pc.EVIT_CASES]  # before evit.py re-registers timm names
    _with_path(ref)
    evit = importlib.import_module("evit")
    for case, (model, x) in zip(pc.EVIT_CASES, built):
        rates = [1.0] * len(model.blocks)
        for loc in case["locations"]:
            rates[loc] = case["keep_rate"]
        ref_model = evit.EViT(img_size=case["img_size"], patch_size=16, embed_dim=model.embed_dim, depth=len(model.blocks),
                              num_heads=model.blocks[0].attn.num_heads, keep_rate=tuple(rates), fuse_token=case["fuse"])
        ref_model.load_state_dict(model.state_dict(), strict=True)
        ref_model.eval()
        with torch.no_grad():
            cls, left, _ = ref_model.forward_features(x)
        out[case["id"]] = {"cls": _rounded(cls), "tokens_per_layer": [t + 1 for t in left]}
        print("evit", case["id"], left)


def record_mctf(ref: Path, out: dict) -> None:
    built = [pc.build_timm(case) for case in pc.MCTF_CASES]
    _with_path(ref)
    deit = importlib.import_module("models.deit")
    for case, (model, x) in zip(pc.MCTF_CASES, built):
        tau_sim, tau_info, tau_size = case["tau"]
        mctf_type = [case["r"], 0, 1, 1, 1, tau_sim, tau_info, tau_size, int(case["bidirection"]),
                     1 if case["pooling"] == "attn" else 0]
        ref_model = deit.deit_tiny(use_mctf=True, activate_layer=case["layers"], mctf_type=mctf_type, task_type=[1, 0, 0, 0])
        ref_model.load_state_dict(model.state_dict(), strict=True)
        ref_model.eval()
        feats = _features(ref_model, x)  # r_eval=None: the reference uses mctf_type[0] as r
        out[case["id"]] = {**_summary(feats), "sizes": ref_model.info["student_size"][..., 0].tolist(),
                           "source": ref_model.info["student_source"].argmax(dim=1).tolist()}
        print("mctf", case["id"], tuple(feats.shape))


def _divprune_fn(ref: Path):
    """The reference's DivPrune method, taken from its source file at record time (the file
    imports LLaVA's whole model stack, which this machine does not have)."""
    src_path = ref / "LLaVA" / "llava" / "model" / "llava_arch.py"
    tree = ast.parse(src_path.read_text())
    wanted = {"pairwise_cosine_similarity", "DivPrune"}
    ns: dict = {"torch": torch}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name in wanted:
            exec(compile(ast.Module(body=[node], type_ignores=[]), str(src_path), "exec"), ns)  # noqa: S102 - reference code, at record time only
    holder = types.SimpleNamespace()
    holder.pairwise_cosine_similarity = types.MethodType(ns["pairwise_cosine_similarity"], holder)
    return types.MethodType(ns["DivPrune"], holder)


def record_divprune(ref: Path, out: dict) -> None:
    fn = _divprune_fn(ref)
    for case in pc.DIVPRUNE_CASES:
        tokens = pc.divprune_tokens(case)
        kept = []
        for b in range(tokens.shape[0]):
            s, _ = fn(tokens[b], tokens.shape[1], None, threshold_ratio=case["ratio"])
            kept.append(s.sort().values.tolist())
        out[case["id"]] = {"kept": kept}
        print("divprune", case["id"], len(kept[0]))


# ---------------------------------------------------------------- post-encoder: MMTok, HiPrune, DyMU


def _reference_defs(src_path: Path, names: set[str], ns: dict) -> dict:
    """Execute only the named top-level functions / classes / methods of a reference source file
    (its module imports pull in whole VLM stacks) in namespace ``ns``; returns ``ns``."""
    tree = ast.parse(src_path.read_text())
    ns.setdefault("__name__", f"reference_{src_path.stem}")  # TorchScript wants a module name
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in names:
            exec(compile(ast.Module(body=[node], type_ignores=[]), str(src_path), "exec"), ns)  # noqa: S102 - reference code, at record time only
    missing = names - set(ns)
    if missing:
        raise SystemExit(f"{src_path}: did not find {sorted(missing)} (reference layout changed?)")
    return ns


def record_mmtok(ref: Path, out: dict) -> None:
    import os
    from typing import List, Optional, Tuple  # noqa: UP035 - names the reference's annotations use

    ns = _reference_defs(ref / "mmtok" / "core" / "semantic_selector.py", {"greedy_merged_jit_kernel", "SemanticTokenSelector"},
                         {"torch": torch, "F": torch.nn.functional, "os": os, "List": List, "Optional": Optional, "Tuple": Tuple})  # noqa: UP006
    for case in pec.MMTOK_CASES:
        x = pec.mmtok_inputs(case)
        selector = ns["SemanticTokenSelector"](target_vision_tokens=case["keep"], alpha=case.get("alpha", 0.5))
        kept = []
        for b in range(x["tokens"].shape[0]):  # the reference is one sample at a time, its own text
            pad = x["exclude"][b].nonzero()[:, 0].tolist() if x["exclude"] is not None else None
            idx, _ = selector.mm_coverage_selection(x["text"][b, : case["text"][b]], x["tokens"][b], x["vision"][b],
                                                    tv_temp=case.get("text_temperature", 0.02),
                                                    vv_temp=case.get("vision_temperature", 0.2), padding_patch_indices=pad)
            kept.append(idx)
        out[case["id"]] = {"kept": kept}
        print("mmtok", case["id"], len(kept[0]))


def record_hiprune(ref: Path, out: dict) -> None:
    import os

    ns = _reference_defs(ref / "LLaVA" / "llava" / "model" / "llava_arch.py", {"encode_images"}, {"torch": torch, "os": os})
    for case in pec.HIPRUNE_CASES:
        obj, deep = pec.hiprune_maps(case)
        n = obj.shape[-1] - 1
        feats = torch.zeros(obj.shape[0], n, 4)
        attentions = [None] * 24  # CLIP ViT-L: 24 layers; the reference reads [object_layer - 1] and [-2]
        attentions[8], attentions[-2] = obj, deep
        def tower(images, feats=feats, attentions=attentions):
            return feats, attentions

        model = types.SimpleNamespace(get_vision_tower=lambda tower=tower: tower, mm_projector=lambda f: f)
        holder = types.SimpleNamespace(get_model=lambda model=model: model, config=types.SimpleNamespace(mm_vision_select_layer=-2))
        env = {"HIPRUNE_RETENTION": str(case["keep"] * obj.shape[0]), "HIPRUNE_ALPHA": str(case["alpha"]), "HIPRUNE_OBJECT_LAYER": "9"}
        saved_env, saved_cuda = {k: os.environ.get(k) for k in env}, torch.Tensor.cuda
        os.environ.update(env)
        torch.Tensor.cuda = lambda self, *a, **k: self  # the reference moves the maps to CUDA
        try:
            _, masks = ns["encode_images"](holder, None)
        finally:
            torch.Tensor.cuda = saved_cuda
            for k, v in saved_env.items():
                os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
        out[case["id"]] = {"kept": [m.nonzero()[:, 0].tolist() for m in masks]}
        print("hiprune", case["id"], [int(m.sum()) for m in masks])


def _dymu_step(ns: dict, x: torch.Tensor, prefix: int, threshold=None, r: int = 0, size=None, padding=None, pos=None):
    """One reference DToMe step with metric = x: instance-level path for one sample with a
    threshold (as DyMU does at inference), batch-level path otherwise. With a threshold the
    reference only needs the layer's r > 0 (it gates the layer); its value is not used."""
    r = r or x.shape[1]
    if threshold is not None and x.shape[0] == 1 and padding is None:
        merge, _ = ns["bipartite_soft_matching"](x, r, bool(prefix), False, specified_threshold=threshold)
        x, size, pos = ns["merge_wavg"](merge, x, size, pos_tracking=pos)
        return x, size, None, pos, None
    merge, _, stat = ns["batch_level_bipartite_soft_matching"](x, r, bool(prefix), False, padding_mask=padding,
                                                               specified_threshold=threshold)
    if merge is ns["do_nothing"]:
        return x, size, padding, pos, stat
    x, size, padding, pos = ns["batch_level_merge_wavg"](merge, x, size, pos_tracking=pos, cls_token=bool(prefix))
    return x, size, padding, pos, stat


def _dymu_summary(x: torch.Tensor, size: torch.Tensor, padding, pos: torch.Tensor) -> dict:
    b, k = x.shape[:2]
    lengths = [k] * b if padding is None else (padding < 0.5).sum(dim=1).tolist()
    first = torch.where(pos.sum(dim=-1) > 0, pos.to(torch.float32).argmax(dim=-1), torch.full((b, k), -1))
    return {"lengths": lengths, "sizes": [size[i, :n, 0].round().int().tolist() for i, n in enumerate(lengths)],
            "first_source": [first[i, :n].tolist() for i, n in enumerate(lengths)],
            "token_sums": [_rounded(x[i, :n].sum(dim=-1)) for i, n in enumerate(lengths)],
            "head": [_rounded(x[i, :4]) for i in range(b)]}


def record_dymu(ref: Path, out: dict) -> None:
    import math
    from typing import Callable, Optional, Tuple  # noqa: UP035 - names the reference's annotations use

    try:
        from einops import rearrange
    except ModuleNotFoundError as exc:
        raise SystemExit("DyMU's tome.py needs einops: pip install --target /tmp/pylib_dymu einops; PYTHONPATH=/tmp/pylib_dymu") from exc
    names = {"do_nothing", "bipartite_soft_matching", "merge_wavg", "batch_level_bipartite_soft_matching",
             "batch_level_merge_wavg", "threshold_running_avg"}
    ns = _reference_defs(ref / "src" / "open_clip" / "tome.py", names,
                         {"torch": torch, "math": math, "rearrange": rearrange, "dist": torch.distributed,
                          "Callable": Callable, "Optional": Optional, "Tuple": Tuple})  # noqa: UP006
    for case in pec.DYMU_CASES:
        x = pec.dymu_tokens(case)
        b, n = x.shape[:2]
        pos = torch.eye(n, dtype=torch.int32)[None].expand(b, n, n)  # source tracking, as DyMU's ViT does
        size = padding = stat = None
        for t in case["threshold"] if isinstance(case.get("threshold"), list) else [case.get("threshold")]:
            x, size, padding, pos, stat = _dymu_step(ns, x, case["prefix"], threshold=t, r=case.get("r", 0),
                                                     size=size, padding=padding, pos=pos)
        out[case["id"]] = {**_dymu_summary(x, size, padding, pos), "threshold": None if stat is None else float(stat)}
        print("dymu", case["id"], out[case["id"]]["lengths"])
    cal = pec.DYMU_CALIBRATION
    meter = types.SimpleNamespace(threshold=torch.tensor(1.0), threshold_count=1.0)
    stats = []
    for x in pec.dymu_calibration_batches(cal):
        _, _, stat = ns["batch_level_bipartite_soft_matching"](x, cal["r"], bool(cal["prefix"]), False)
        stats.append(float(stat))
        ns["threshold_running_avg"](meter, stat)
    out[cal["id"]] = {"batch_thresholds": stats, "threshold": float(meter.threshold)}
    print("dymu", cal["id"], stats, float(meter.threshold))


POST_ENCODER = (("mmtok", record_mmtok), ("hiprune", record_hiprune), ("dymu", record_dymu))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("tome", "diffrate", "evit", "mctf", "divprune"):
        ap.add_argument(f"--{name}", type=Path, help=f"checkout of the {name} reference (skipped if absent)")
    for name, _ in POST_ENCODER:
        ap.add_argument(f"--{name}", type=Path, help=f"checkout of the {name} reference (skipped if absent)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    torch.set_num_threads(1)
    pc.import_timm()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, fn in (("tome", record_tome), ("diffrate", record_diffrate), ("evit", record_evit), ("mctf", record_mctf),
                     ("divprune", record_divprune), *POST_ENCODER):
        ref = getattr(args, name)
        if ref is None or not ref.exists():
            print(f"skip {name}: no reference checkout given")
            continue
        out: dict = {}
        fn(ref, out)
        path = args.out / f"{name}.json"
        path.write_text(json.dumps({"cases": out}, separators=(",", ":")) + "\n")
        print("wrote", path, path.stat().st_size, "bytes")


if __name__ == "__main__":
    main()
