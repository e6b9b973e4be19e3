"""The "Compare tokenizers" guide shows what ``zoo eval`` wrote: its table is the committed
report's table, and the figure and report exist (``python scripts/docs/eval_plot.py`` makes all three)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from zoo.evaluation.report import EvalReport

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "guides" / "compare-tokenizers.md"
FIGURES = ROOT / "docs" / "assets" / "figures"


def _between(text: str, marker: str) -> str:
    m = re.search(rf"<!-- {marker} -->\n(.*?)<!-- /{marker} -->", text, re.DOTALL)
    assert m, f"{GUIDE.name} lost its <!-- {marker} --> markers"
    return m[1]


def test_the_guide_table_is_the_reports():
    report = EvalReport.load(FIGURES / "compare_tokenizers_demo.json")
    assert _between(GUIDE.read_text(), "eval:table") == report.to_markdown()
    assert any(".demo" in r["model"] for r in report.rows)


def test_the_guide_excerpt_is_from_the_report():
    report = json.loads((FIGURES / "compare_tokenizers_demo.json").read_text())
    excerpt = json.loads(_between(GUIDE.read_text(), "eval:excerpt").strip().removeprefix("```json").removesuffix("```"))
    row = excerpt["rows"][0]
    assert row in [{k: r[k] for k in row if k != "metrics"} | {"metrics": {"psnr": r["metrics"]["psnr"]}}
                   for r in report["rows"]]


def test_the_figure_exists_and_is_linked():
    assert (FIGURES / "compare_tokenizers_demo.png").stat().st_size > 10_000
    assert "../assets/figures/compare_tokenizers_demo.png" in GUIDE.read_text()
    assert "python scripts/docs/eval_plot.py" in GUIDE.read_text()
