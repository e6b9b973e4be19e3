"""The Benchmarks page is generated from the JSON records of ``benchmarks/*.py``.

Unit tests feed ``scripts/docs/benchmarks_page.py`` synthetic records (reference measured or not,
CPU or GPU, each kind); the built-site tests check the page made from the committed records.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from tests.docs.conftest import load_script

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
SCRIPTS = sorted(p for p in (ROOT / "benchmarks").glob("*.py") if not p.name.startswith("_"))


@pytest.fixture(scope="module")
def bp():
    return load_script("benchmarks_page")


def record(kind="tokenizer", reference=False, device="cpu", benchmark="tok", rows=None):
    base = {
        "schema": 1, "benchmark": benchmark, "title": f"{benchmark} title", "kind": kind, "device": device,
        "date": "2026-12-02T04:00:00+00:00", "threads": 1, "peak_rss_mib": 2048.0,
        "machine": {"cpu": "Test CPU", "cores": 2, "torch": "2.13.0+cpu",
                    "gpu": {"name": "Test GPU", "cuda": "12.8"} if device != "cpu" else None},
        "load_average": {"start": [1.5, 1.0, 0.5], "end": [2.25, 1.0, 0.5]},
        "reference_measured": reference, "reference": "/ref" if reference else None,
        "command": f"python benchmarks/{benchmark}.py", "notes": ["a note"],
    }
    if rows is None and kind == "tokenizer":
        rows = [{"model": "titok.s_128", "op": "encode", "batch": 1, "unit": "img/s", "zoo_s": 0.5,
                 "zoo_per_s": 2.0, "ref_s": 1.0 if reference else None, "ref_per_s": 1.0 if reference else None,
                 "speedup": 2.0 if reference else None}]
    if rows is None and kind == "reducer":
        rows = [{"model": "vit", "backend": "sdpa", "config": "baseline", "img_s": 1.0, "speedup": 1.0, "gmacs": 17.6,
                 "cosine": 1.0, "tokens": [197]},
                {"model": "vit", "backend": "sdpa", "config": "zoo tome r=8", "img_s": 1.5, "speedup": 1.5, "gmacs": 11.0,
                 "cosine": 0.99, "tokens": [197, 189]}]
    base["rows"] = rows or []
    return base


@pytest.mark.parametrize("reference, warned", [(False, True), (True, False)])
def test_missing_reference_is_said_not_hidden(bp, reference, warned):
    page, _ = bp.benchmarks_page([record(reference=reference)])
    assert ("were not measured in this run" in page) is warned
    assert ("| not measured |" in page) is warned
    if reference:
        assert "| 2 |" in page  # the measured speed-up


@pytest.mark.parametrize("device, gpu_text", [("cpu", True), ("cuda", False)])
def test_gpu_section_says_not_measured_until_a_gpu_record_exists(bp, device, gpu_text):
    records = [record()] + ([record(device="cuda", benchmark="gpu_check")] if device == "cuda" else [])
    page, _ = bp.benchmarks_page(records)
    assert ("Not measured on GPU yet" in page) is gpu_text
    if not gpu_text:
        assert "Test GPU" in page and "gpu_check title" in page


@pytest.mark.parametrize("end_load, flagged", [(1.9, False), (2.5, True)])
def test_a_busy_machine_is_flagged(bp, end_load, flagged):
    rec = record()
    rec["load_average"]["end"] = [end_load, 1.0, 1.0]  # 2 cores
    page, _ = bp.benchmarks_page([rec])
    assert ("Measured on a busy machine" in page) is flagged and ("(**busy**)" in page) is flagged


def test_runs_table_shows_machine_date_threads_load_and_memory(bp):
    page, _ = bp.benchmarks_page([record()])
    row = next(line for line in page.splitlines() if line.startswith("| tok title"))
    for text in ("2026-12-02 04:00", "Test CPU, 2 cores", "torch 2.13.0+cpu", "| 1 |", "1.50 → 2.25", "2.0 GiB"):
        assert text in row, (text, row)


@pytest.mark.parametrize("kind, marks", [("tokenizer", "<rect"), ("reducer", "<circle")])
def test_one_plot_per_kind(bp, kind, marks):
    page, plots = bp.benchmarks_page([record(kind=kind)])
    assert list(plots) == [f"assets/benchmarks/{kind}.svg"]
    svg = plots[f"assets/benchmarks/{kind}.svg"]
    assert svg.startswith("<svg") and marks in svg
    assert f"](assets/benchmarks/{kind}.svg)" in page


def test_bars_carry_zoo_and_reference_values(bp):
    svg = bp.throughput_svg([record(reference=True)])
    assert "zoo: 2 img/s" in svg and "reference: 1 img/s" in svg and "(2.00x ref)" in svg


def test_no_records_is_a_page_that_says_so(bp):
    page, plots = bp.benchmarks_page([])
    assert "No results yet" in page and "Not measured on GPU yet" in page and not plots


def test_malformed_record_names_the_file(bp, tmp_path):
    (tmp_path / "good.json").write_text(json.dumps(record()))
    (tmp_path / "bad.json").write_text(json.dumps({"benchmark": "x"}))
    with pytest.raises(ValueError, match=r"bad\.json.*missing"):
        bp.load_records(tmp_path)
    (tmp_path / "bad.json").unlink()
    assert [r["benchmark"] for r in bp.load_records(tmp_path)] == ["tok"]


@pytest.mark.parametrize("family, expected", [
    ("titok", "titok.s_128 encode b1: 2 img/s (reference not measured)"),
    ("tome", "up to 1.5x images/s over the unreduced `vit` at feature cosine 0.99"),
    ("flextok", ""),
])
def test_family_section(bp, family, expected):
    text = bp.family_section(family, [record(), record(kind="reducer", benchmark="reducers")])
    assert (expected in text) if expected else text == ""


def test_every_benchmark_script_writes_a_record():
    for script in SCRIPTS:
        source = script.read_text(encoding="utf-8")
        direct = "from _record import" in source and "start(" in source and ".write(" in source
        # the generator benchmarks open and write theirs through _generator.begin / run_batches
        via_generator = "from _generator import" in source and "begin(" in source and "run_batches(" in source
        # the image tokenizer benchmarks that time encode + decode write theirs through _conv_bench
        via_codec = "from _conv_bench import" in source and "run_codec_benchmark(" in source
        if via_codec:
            driver = (script.parent / "_conv_bench.py").read_text(encoding="utf-8")
            assert "from _record import" in driver and "start(" in driver and ".write(" in driver
        assert direct or via_generator or via_codec, f"{script.name} does not write a JSON record (benchmarks/_record.py)"
    helper = (ROOT / "benchmarks" / "_generator.py").read_text(encoding="utf-8")
    assert "from _record import" in helper and "start(" in helper and ".write(" in helper


def test_committed_records_are_complete():
    records = sorted(RESULTS.glob("*.json"))
    assert records, "no benchmark records committed in benchmarks/results/"
    for path in records:
        rec = json.loads(path.read_text())
        for key in ("benchmark", "kind", "date", "machine", "threads", "load_average", "rows", "reference_measured",
                    "peak_rss_mib", "command"):
            assert key in rec, f"{path.name} lacks {key}"
        assert rec["machine"]["cpu"] and rec["machine"]["cores"] and rec["machine"]["torch"]
        assert len(rec["load_average"]["start"]) == 3 and len(rec["load_average"]["end"]) == 3
        assert rec["rows"], f"{path.name} has no rows"


def test_record_writer_round_trip(tmp_path, monkeypatch):
    """benchmarks/_record.py writes what the page reads (NaN as null, machine and load filled in)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_bench_record", ROOT / "benchmarks" / "_record.py")
    rec_mod = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "_bench_record", rec_mod)  # dataclasses look their module up
    spec.loader.exec_module(rec_mod)
    run = rec_mod.start("demo", title="Demo", kind="tokenizer", threads=1, settings={"p": Path("x")},
                        reference=None, results=str(tmp_path))
    path = run.write([{"model": "m", "zoo_per_s": float("nan"), "unit": "img/s"}], notes=["n"])
    data = json.loads(path.read_text())
    assert data["rows"][0]["zoo_per_s"] is None and data["settings"] == {"p": "x"}
    assert data["machine"]["cores"] and data["load_average"]["start"] and data["reference_measured"] is False
    assert path.name == "demo.json"
    assert rec_mod.start("d", title="D", kind="k", threads=1, settings={}, reference=None, results="").write([]) is None


def test_built_page_shows_every_committed_record(built_site):
    html = (built_site.root / "benchmarks" / "index.html").read_text(encoding="utf-8")
    records = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))]
    for rec in records:
        assert rec["title"] in html.replace("&amp;", "&"), rec["title"]
    gpu = any(r.get("device", "cpu") != "cpu" for r in records)
    assert ("Not measured on GPU yet" in html) is (not gpu)
    for src in re.findall(r'<img[^>]+src="([^"]+\.svg)"', html):
        assert (built_site.root / "benchmarks" / src).resolve().is_file(), src


def test_family_pages_link_their_speed(built_site):
    html = (built_site.root / "models" / "wavtokenizer" / "index.html").read_text(encoding="utf-8")
    if (RESULTS / "wavtokenizer.json").is_file():
        assert 'id="speed"' in html and "../../benchmarks/" in html
