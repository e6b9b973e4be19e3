"""Record GlobalCom²'s parity fixture by running the reference's own functions.

The functions ``generate_scale_for_crop_features``, ``interpolate_and_split_cls_attn_scores``,
``select_topk_crop_features`` (and their helpers) and the methods ``compress_thumbnail`` /
``compress_crops`` are taken from the reference's ``llava/model/llava_arch.py`` at record time
(parsed with ``ast``; the LLaVA package itself is not imported) and run on the seeded cases of
``tests/plugins/reducers/vlm_cases.py``. Only their outputs are written, to
``tests/fixtures/reducers/globalcom2.json``.

    git -C <mirror of xuyang-liu16/GlobalCom2> archive HEAD llava/model/llava_arch.py | tar -x -C /tmp/ref/globalcom2
    python scripts/parity/record_globalcom2.py /tmp/ref/globalcom2
"""

from __future__ import annotations

import ast
import json
import sys
import types
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "plugins" / "reducers"))

import vlm_cases  # noqa: E402

OUT = ROOT / "tests" / "fixtures" / "reducers" / "globalcom2.json"
FUNCTIONS = ("generate_scale_for_crop_features", "extract_actual_dimensions", "get_original_indices",
             "get_actual_crop_dimensions", "interpolate_and_split_cls_attn_scores", "select_topk_crop_features")
METHODS = ("compress_thumbnail", "compress_crops")


def load_reference(root: Path) -> dict:
    """The reference's functions and methods, compiled from its source in one namespace."""
    tree = ast.parse((root / "llava" / "model" / "llava_arch.py").read_text())
    keep = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in FUNCTIONS]
    keep += [n for n in tree.body if isinstance(n, ast.Assign) and any(getattr(t, "id", "") == "retention_ratio" for t in n.targets)]
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "LlavaMetaForCausalLM"):
        keep += [m for m in cls.body if isinstance(m, ast.FunctionDef) and m.name in METHODS]
    keep.sort(key=lambda n: n.lineno)
    ns = {"torch": torch, "nn": nn, "F": F, "np": np}
    exec(compile(ast.Module(body=keep, type_ignores=[]), str(root / "llava_arch.py"), "exec"), ns)
    missing = [n for n in FUNCTIONS + METHODS if n not in ns]
    if missing:
        raise SystemExit(f"reference functions not found: {missing}")
    return ns


def record_case(ns: dict, case: dict) -> dict:
    rows, cols = case["grid"]
    side = case["side"]
    n = side * side
    s = vlm_cases.scores(case)
    base = s[0]
    # features that name themselves: (view, token) in two channels, exact in float16
    feats = torch.stack([torch.arange(1 + rows * cols)[:, None].expand(-1, n), torch.arange(n)[None].expand(1 + rows * cols, -1)], -1).float()
    fake = types.SimpleNamespace(model=types.SimpleNamespace(image_newline=torch.full((2,), -1.0)))
    _, thumb = ns["compress_thumbnail"](fake, feats[0], base, scale=case["keep"])
    scales = ns["generate_scale_for_crop_features"](base, cols, rows, base_scale=case["keep"])
    h, w = case["size"]
    out = ns["compress_crops"](fake, feats[1:], s[1:], base, cols, rows, side, side, (w, h), scales)
    pairs = out.float().tolist()
    return {"thumbnail": thumb.tolist(), "scales": [float(x) for x in scales],
            "crop_tokens": [[int(a), int(b)] for a, b in pairs if a >= 0], "newlines": sum(1 for a, _ in pairs if a < 0),
            "order": [int(a) >= 0 for a, _ in pairs]}


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    ns = load_reference(Path(sys.argv[1]))
    torch.manual_seed(0)
    cases = {c["id"]: record_case(ns, c) for c in vlm_cases.GLOBALCOM2_CASES}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"reference": "xuyang-liu16/GlobalCom2 llava/model/llava_arch.py", "cases": cases}) + "\n")
    print(f"wrote {OUT} ({len(cases)} cases)")


if __name__ == "__main__":
    main()
