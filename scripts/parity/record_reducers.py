"""Record the reducers' parity fixtures by running the reference implementations.

Runs the original ToMe patch, DiffRate patch, EViT model, MCTF model and DivPrune selection (each from a
path given on the command line; a missing one is skipped) on timm models whose weights are
regenerated from ``zoo.testing.seeded_state_dict`` and on seeded inputs, and writes only the
outputs (features, token sources, kept indices) to ``tests/fixtures/reducers/``.

    python scripts/parity/record_reducers.py --tome /tmp/ref/tome --diffrate /tmp/ref/diffrate \
        --evit /tmp/ref/evit --mctf /tmp/ref/mctf --divprune /tmp/ref/divprune

The cases themselves live in ``tests/plugins/reducers/parity_cases.py`` so the tests rebuild the
same models and inputs.
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

import parity_cases as pc

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("tome", "diffrate", "evit", "mctf", "divprune"):
        ap.add_argument(f"--{name}", type=Path, help=f"checkout of the {name} reference (skipped if absent)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    torch.set_num_threads(1)
    pc.import_timm()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, fn in (("tome", record_tome), ("diffrate", record_diffrate), ("evit", record_evit), ("mctf", record_mctf),
                     ("divprune", record_divprune)):
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
