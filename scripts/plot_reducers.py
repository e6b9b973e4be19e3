"""Throughput vs fidelity plot for the docs, from ``benchmarks/reducers.py --json rows.json``.

Writes an SVG (no plotting dependency): x = speed-up over the unreduced model (same run),
y = feature cosine to the unreduced model (random weights), one colour per method, one panel
per model.

    python scripts/plot_reducers.py rows.json [more.json ...] docs/assets/figures/reducers.svg
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

COLOURS = {"zoo tome": "#1f77b4", "ref tome": "#ff7f0e", "zoo diffrate": "#2ca02c", "zoo evit": "#d62728",
           "zoo mctf": "#9467bd", "baseline": "#000000"}
W, H, PAD = 420, 300, 50


def _method(config: str) -> str:
    for key in COLOURS:
        if config.startswith(key):
            return key
    return config


def panel(rows: list[dict], title: str, x0: int) -> list[str]:
    xs = [r["speedup"] for r in rows]
    ys = [r["cosine"] for r in rows]
    xmin, xmax = 0.9, max(xs) * 1.05
    ymin, ymax = min(ys) - 0.002, 1.0005
    sx = lambda v: x0 + PAD + (v - xmin) / (xmax - xmin) * (W - 2 * PAD)
    sy = lambda v: H - PAD - (v - ymin) / (ymax - ymin) * (H - 2 * PAD)
    out = [f'<text x="{x0 + W / 2}" y="20" text-anchor="middle" font-size="14">{title}</text>',
           f'<line x1="{x0 + PAD}" y1="{H - PAD}" x2="{x0 + W - PAD}" y2="{H - PAD}" stroke="black"/>',
           f'<line x1="{x0 + PAD}" y1="{PAD}" x2="{x0 + PAD}" y2="{H - PAD}" stroke="black"/>',
           f'<text x="{x0 + W / 2}" y="{H - 12}" text-anchor="middle" font-size="11">speed-up vs unreduced (img/s ratio)</text>',
           f'<text x="{x0 + 12}" y="{H / 2}" font-size="11" transform="rotate(-90 {x0 + 12} {H / 2})" text-anchor="middle">feature cosine (random weights)</text>']
    for v in (1.0, 1.5, 2.0, 2.5, 3.0):
        if xmin <= v <= xmax:
            out.append(f'<text x="{sx(v):.1f}" y="{H - PAD + 14}" font-size="9" text-anchor="middle">{v:.1f}x</text>')
    for v in (ymin, (ymin + ymax) / 2, ymax):
        out.append(f'<text x="{x0 + PAD - 4}" y="{sy(v):.1f}" font-size="9" text-anchor="end">{v:.3f}</text>')
    for r in rows:
        colour = COLOURS.get(_method(r["config"]), "#7f7f7f")
        out.append(f'<circle cx="{sx(r["speedup"]):.1f}" cy="{sy(r["cosine"]):.1f}" r="4" fill="{colour}">'
                   f'<title>{r["config"]}: {r["img_s"]:.2f} img/s</title></circle>')
        label = r["config"].split(" ", 2)[-1] if r["config"] != "baseline" else "baseline"
        out.append(f'<text x="{sx(r["speedup"]) + 5:.1f}" y="{sy(r["cosine"]) - 5:.1f}" font-size="8">{label}</text>')
    return out


def render(rows: list[dict]) -> str:
    models = sorted({r["model"] for r in rows})
    body = []
    for i, model in enumerate(models):
        body += panel([r for r in rows if r["model"] == model], model, i * W)
    legend_y = H + 10
    for j, (name, colour) in enumerate(COLOURS.items()):
        body.append(f'<circle cx="{PAD + j * 110}" cy="{legend_y}" r="4" fill="{colour}"/>')
        body.append(f'<text x="{PAD + j * 110 + 8}" y="{legend_y + 4}" font-size="10">{name}</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{W * len(models)}" height="{H + 25}" '
            f'font-family="sans-serif">\n' + "\n".join(body) + "\n</svg>\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rows", type=Path, nargs="+", help="one or more --json outputs (ratios are per run)")
    ap.add_argument("out", type=Path)
    args = ap.parse_args()
    rows, seen = [], set()
    for path in args.rows:  # later files win for the same (model, config); diagnostic rows are left out
        for r in json.loads(path.read_text()):
            if r["config"].endswith("all rows"):
                continue
            key = (r["model"], r["config"])
            if key in seen:
                rows = [x for x in rows if (x["model"], x["config"]) != key]
            seen.add(key)
            rows.append(r)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(rows))
    print("wrote", args.out)


if __name__ == "__main__":
    main()
