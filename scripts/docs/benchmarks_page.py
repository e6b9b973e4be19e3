"""The "Benchmarks" docs page, generated at build time from ``benchmarks/results/*.json``.

Each script in ``benchmarks/`` writes one JSON record per run (``benchmarks/_record.py``: machine,
date, threads, load average at start and end, peak memory, whether the reference implementation
was measured, the rows it printed). This module turns the records into a Markdown page with
tables and SVG plots (drawn here, no plotting dependency): tokenizer and generator throughput as
bars, token reducers as speed-up against feature cosine (``scripts/plot_reducers.py``). Nothing is
typed by hand: a number on the page is a number in a record.

Used by ``hooks.py``; pure functions of the records, so tests can feed them synthetic ones.

Example:
    >>> fmt(1234.5678), fmt(0.012345), fmt(None), fmt(True)
    ('1.23e+03', '0.0123', '–', 'yes')
    >>> row_family({"kind": "reducer"}, {"config": "zoo tome r=8"}), row_family({"kind": "tokenizer"}, {"model": "titok.l_32"})
    ('tome', 'titok')
"""

from __future__ import annotations

import html
import importlib.util
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
PAGE = "benchmarks.md"
ASSETS = "assets/benchmarks"  # generated plots live here in the built site
REQUIRED = ("benchmark", "kind", "date", "machine", "threads", "load_average", "rows")
KINDS = {"tokenizer": "Tokenizers", "reducer": "Token reducers", "generator": "Generators"}
NOT_MEASURED = "not measured"

#: Columns shown per kind, in order (a column appears when any row has it): key -> header.
COLUMNS: dict[str, dict[str, str]] = {
    "tokenizer": {"model": "model", "op": "op", "batch": "batch", "audio_s": "audio (s)", "unit": "unit",
                  "zoo_s": "zoo (CPU s)", "zoo_per_s": "zoo per s", "ref_per_s": "reference per s",
                  "speedup": "speed-up vs reference", "bf16_s": "zoo bf16 (CPU s)", "zoo_peak_mib": "zoo peak MiB",
                  "ref_peak_mib": "reference peak MiB", "check": "outputs"},
    "generator": {"model": "model", "unit": "unit", "zoo_per_s": "zoo", "ref_per_s": "reference",
                  "speedup": "speed-up vs reference", "ids_equal": "ids equal"},
    "reducer": {"model": "model", "backend": "backend", "config": "config", "img_s": "img/s",
                "speedup": "speed-up vs unreduced", "gmacs": "GMACs", "cosine": "feature cosine",
                "prefill_tokens": "prefill tokens", "prefill_cpu_s": "prefill (CPU s)", "lm_speedup": "LM speed-up",
                "peak_above_mib": "peak above (MiB)", "first_tokens_equal": "leading tokens equal",  # VLM rows
                "context": "prompt tokens", "kv_mib": "KV MiB", "kv_vs_plain": "KV vs plain",  # KV-cache rows
                "decode_tokens_per_cpu_s": "decode tok/CPU-s", "next_token_agreement": "next-token agreement",
                "rate": "rate", "ratio": "compression ratio", "zoo_cpu_s_per_1k_words": "zoo CPU s / 1k words",  # LLMLingua-2 rows
                "reference_cpu_s_per_1k_words": "reference CPU s / 1k words", "same_output": "same text"},
}
REFERENCE_COLUMNS = {"ref_per_s", "ref_s", "speedup", "ids_equal"}  # empty when no reference ran


# --------------------------------------------------------------------------- records


def load_records(folder: str | Path = RESULTS) -> list[dict[str, Any]]:
    """Every ``*.json`` record in ``folder`` (sorted by benchmark); a malformed one is an error
    naming the file and the missing keys (so a strict build fails instead of hiding it)."""
    folder = Path(folder)
    records = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            rec = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc}); re-run the benchmark that wrote it") from exc
        missing = [k for k in REQUIRED if k not in rec] if isinstance(rec, dict) else list(REQUIRED)
        if missing:
            raise ValueError(f"{path}: not a benchmark record, missing {missing} (see benchmarks/_record.py)")
        rec["_file"] = path.name
        records.append(rec)
    return sorted(records, key=lambda r: (r.get("device", "cpu") != "cpu", r["benchmark"]))


def fmt(value: Any) -> str:
    """A table cell: 3 significant digits, '–' for nothing, yes/no for booleans."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value).replace("|", "\\|")


def row_family(record: Mapping[str, Any], row: Mapping[str, Any]) -> str:
    """The model family a row measures (reducer rows: the method; others: the model's first word)."""
    if record.get("kind") == "reducer":
        words = str(row.get("config", "")).split()
        return words[1] if len(words) > 1 and words[0] in ("zoo", "ref") else "baseline"
    match = re.match(r"[A-Za-z_]+", str(row.get("model", "")))
    return match.group(0).lower() if match else ""


def busy(record: Mapping[str, Any]) -> bool:
    """The 1-minute load average exceeded the core count at the start or the end of the run."""
    la, cores = record.get("load_average") or {}, (record.get("machine") or {}).get("cores")
    loads = [v[0] for v in (la.get("start"), la.get("end")) if v]
    return bool(cores and loads and max(loads) > cores)


def _load(record: Mapping[str, Any]) -> str:
    la = record.get("load_average") or {}
    start, end = la.get("start"), la.get("end")
    if not start or not end:
        return "–"
    return f"{start[0]:.2f} → {end[0]:.2f}" + (" (**busy**)" if busy(record) else "")


def _machine(record: Mapping[str, Any]) -> str:
    m = record.get("machine") or {}
    gpu = m.get("gpu")
    where = f"{gpu['name']} (CUDA {gpu.get('cuda')})" if isinstance(gpu, dict) else f"{m.get('cpu', '?')}, {m.get('cores', '?')} cores"
    return f"{where}, torch {m.get('torch', '?')}"


def _reference(record: Mapping[str, Any]) -> str:
    return "measured" if record.get("reference_measured") else f"**{NOT_MEASURED}**"


def wide(table: str) -> str:
    """A Markdown table in a ``zoo-wide`` box (compact, wrapping: docs/assets/zoo.css)."""
    return f'<div class="zoo-wide" markdown>\n\n{table}\n</div>\n'


def runs_table(records: Sequence[Mapping[str, Any]]) -> str:
    """One row per record: what ran, where, when, how loaded the machine was."""
    out = ["| benchmark | date (UTC) | machine | threads | load average (1 min, start → end) | peak memory | reference |",
           "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in records:
        mem = f"{r['peak_rss_mib'] / 1024:.1f} GiB" if r.get("peak_rss_mib") else "–"
        out.append(f"| {r.get('title', r['benchmark'])} | {str(r['date'])[:16].replace('T', ' ')} | {_machine(r)} "
                   f"| {r['threads']} | {_load(r)} | {mem} | {_reference(r)} |")
    return "\n".join(out) + "\n"


def rows_table(record: Mapping[str, Any], columns: Mapping[str, str] | None = None) -> str:
    """The record's rows as a Markdown table (reference columns say 'not measured' when absent)."""
    rows = record["rows"]
    columns = columns or COLUMNS.get(record["kind"]) or {k: k for k in rows[0]} if rows else {}
    keys = [k for k in columns if any(k in r for r in rows)]
    if not keys:
        return "_No rows in this record._\n"
    out = ["| " + " | ".join(columns[k] for k in keys) + " |", "| " + " | ".join("---" for _ in keys) + " |"]
    no_ref = not record.get("reference_measured")
    for r in rows:
        cells = []
        for k in keys:
            v = r.get(k)
            cells.append(NOT_MEASURED if v is None and no_ref and k in REFERENCE_COLUMNS and record["kind"] != "reducer"
                         else fmt(v))
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def checks_table(records: Sequence[Mapping[str, Any]]) -> str:
    """Output agreement recorded by the runs: ids equal, max |difference|, tolerance."""
    out = ["| benchmark | check | where | ids equal | max abs difference | tolerance |", "| --- | --- | --- | --- | --- | --- |"]
    n = 0
    for r in records:
        for c in r.get("checks") or []:
            where = ", ".join(f"{k} {fmt(c[k])}" for k in ("batch", "audio_s", "dtype") if k in c)
            frac = c.get("ids_equal_fraction")
            out.append(f"| {r['benchmark']} | {fmt(c.get('check'))} | {where or '–'} | "
                       f"{'–' if frac is None else f'{100 * frac:.1f} %'} | {fmt(c.get('max_abs_diff'))} | {fmt(c.get('tolerance'))} |")
            n += 1
    return "\n".join(out) + "\n" if n else ""


# --------------------------------------------------------------------------- plots (SVG by hand)


def bar_chart(panels: Sequence[tuple[str, str, list[tuple[str, float, float | None]]]], width: int = 760) -> str:
    """Horizontal bars, one panel per (title, unit, [(label, zoo value, reference value or None)]).

    Each panel has its own linear scale (units differ between panels); a reference value draws as
    a grey bar under zoo's teal one, with the speed-up printed beside it.
    """
    label_w, bar_h, gap, top = 230, 14, 6, 28
    y, body = 8, []
    for title, unit, items in panels:
        body.append(f'<text x="4" y="{y + 14}" font-size="13" font-weight="bold">{html.escape(title)} ({html.escape(unit)})</text>')
        y += top
        vmax = max([v for _, v, _ in items] + [r for _, _, r in items if r]) or 1.0
        scale = (width - label_w - 90) / vmax
        for label, value, ref in items:
            h = bar_h * (2 if ref else 1) + 2
            body.append(f'<text x="{label_w - 6}" y="{y + h / 2 + 4:.1f}" font-size="11" text-anchor="end">{html.escape(label)}</text>')
            body.append(f'<rect x="{label_w}" y="{y}" width="{max(value * scale, 1):.1f}" height="{bar_h}" fill="#00897b">'
                        f'<title>zoo: {value:.4g} {html.escape(unit)}</title></rect>')
            text = f"{value:.3g}"
            if ref:
                body.append(f'<rect x="{label_w}" y="{y + bar_h + 2}" width="{max(ref * scale, 1):.1f}" height="{bar_h}" fill="#9e9e9e">'
                            f'<title>reference: {ref:.4g} {html.escape(unit)}</title></rect>')
                text += f" ({value / ref:.2f}x ref)"
            body.append(f'<text x="{label_w + value * scale + 4:.1f}" y="{y + bar_h - 3}" font-size="10">{text}</text>')
            y += h + gap
        y += 10
    legend = (f'<rect x="4" y="{y}" width="10" height="10" fill="#00897b"/><text x="18" y="{y + 9}" font-size="11">zoo</text>'
              f'<rect x="60" y="{y}" width="10" height="10" fill="#9e9e9e"/>'
              f'<text x="74" y="{y + 9}" font-size="11">reference (where measured)</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{y + 20}" viewBox="0 0 {width} {y + 20}" '
            f'font-family="sans-serif">\n' + "\n".join(body) + "\n" + legend + "\n</svg>\n")


def _label(row: Mapping[str, Any]) -> str:
    where = f"b{row['batch']}" if "batch" in row else (f"{fmt(row['audio_s'])} s audio" if "audio_s" in row else "")
    return " ".join(str(x) for x in (row.get("model", ""), row.get("op", ""), where) if x)


def throughput_svg(records: Sequence[Mapping[str, Any]]) -> str | None:
    """Bars of zoo (and reference) throughput, one panel per record; None when nothing to draw."""
    panels = []
    for r in records:
        items = [(_label(row), row["zoo_per_s"], row.get("ref_per_s")) for row in r["rows"] if row.get("zoo_per_s")]
        if items:
            unit = next(row.get("unit", "per s") for row in r["rows"] if row.get("zoo_per_s"))
            panels.append((r.get("title", r["benchmark"]), f"{unit}, higher is better", items))
    return bar_chart(panels) if panels else None


def _plot_reducers():
    name = "_zoo_plot_reducers"
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / "plot_reducers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def reducer_svg(records: Sequence[Mapping[str, Any]]) -> str | None:
    """Speed-up against feature cosine (``scripts/plot_reducers.py``), all reducer records' rows."""
    rows = [row for r in records for row in r["rows"] if {"speedup", "cosine", "config", "model"} <= set(row)
            and not str(row["config"]).endswith("all rows")]
    return _plot_reducers().render(rows) if rows else None


# --------------------------------------------------------------------------- the page


def _plots(cpu: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    plots = {}
    for kind in KINDS:
        recs = [r for r in cpu if r["kind"] == kind]
        svg = reducer_svg(recs) if kind == "reducer" else throughput_svg(recs)
        if svg:
            plots[f"{ASSETS}/{kind}.svg"] = svg
    return plots


def _gpu_section(gpu: Sequence[Mapping[str, Any]]) -> list[str]:
    out = ["## GPU\n"]
    if not gpu:
        out.append('!!! info "Not measured on GPU yet"\n    No GPU record exists in `benchmarks/results/`: the '
                   "numbers above are CPU numbers. On a machine with one CUDA GPU, `bash benchmarks/gpu_check.sh` "
                   "(under 8 minutes) runs the CUDA tests, FlexTok/TiTok/WavTokenizer parity in fp32 and bf16 and "
                   "SDPA vs xformers decode speed, and writes its JSON here; the next build shows it.\n")
        return out
    for r in gpu:
        out.append(f"### {r.get('title', r['benchmark'])}\n")
        out.append(f"{_machine(r)}; {str(r['date'])[:16].replace('T', ' ')} UTC.\n")
        out.append(wide(rows_table(r, {k: k for row in r["rows"] for k in row if not isinstance(row[k], (dict, list))})))
    return out


def benchmarks_page(records: Sequence[Mapping[str, Any]]) -> tuple[str, dict[str, str]]:
    """(Markdown of ``benchmarks.md``, {site path: SVG} of its plots)."""
    cpu = [r for r in records if str(r.get("device", "cpu")) == "cpu"]
    gpu = [r for r in records if str(r.get("device", "cpu")) != "cpu"]
    plots = _plots(cpu)
    out = ["# Benchmarks\n",
           ("Every number on this page comes from a JSON record that a script in `benchmarks/` wrote into "
           "`benchmarks/results/` when it ran; the page is regenerated from them at each docs build. "
           "Speed is process CPU time with one torch thread unless a record says otherwise, so a busy neighbour "
           "costs wall time but not the measurement; the load average at the start and end of each run is "
           "shown so you can judge. Compare ratios measured in one run, not absolute numbers across machines. "
           "Weights are random (seeded per key) in the official layouts, at the published sizes unless noted.\n")]
    if not records:
        out.append('!!! info "No results yet"\n    Run a script in `benchmarks/` (it writes its record into '
                   "`benchmarks/results/`) and rebuild the site.\n")
    missing_ref = [r for r in cpu if not r.get("reference_measured")]
    if missing_ref:
        names = ", ".join(f"`{r['benchmark']}`" for r in missing_ref)
        out.append(f'!!! warning "Speed ratios against the references were not measured in this run"\n'
                   f"    The reference implementations were not installed on the machine that ran {names}, so those "
                   f"records hold zoo's own timings only (token reducers: no reference ToMe row) and every reference column "
                   f"says *{NOT_MEASURED}*. "
                   "Each script takes the reference's location as an argument (`--ref ...`, see its docstring); "
                   "re-run it with one to fill the ratios.\n")
    noisy = [r for r in cpu if busy(r)]
    if noisy:
        names = ", ".join(f"`{r['benchmark']}`" for r in noisy)
        out.append(f'!!! note "Measured on a busy machine"\n    The load average exceeded the core count during {names}: '
                   "other processes shared the CPU. CPU-time measurements hold up better than wall time, but "
                   "caches and memory bandwidth were shared too; re-run on a quiet machine before quoting them.\n")
    if cpu:
        out.append("## Runs\n")
        out.append(wide(runs_table(cpu)))
    for kind, title in KINDS.items():
        recs = [r for r in cpu if r["kind"] == kind]
        if not recs:
            continue
        out.append(f"## {title}\n")
        svg = f"{ASSETS}/{kind}.svg"
        if svg in plots:
            caption = ("speed-up over the unreduced model against feature cosine (random weights)" if kind == "reducer"
                       else "zoo throughput per run (grey: the reference, where measured)")
            out.append(f"![{title}: {caption}]({svg}){{ loading=lazy }}\n")
        for r in recs:
            out.append(f"### {r.get('title', r['benchmark'])}\n")
            notes = "; ".join(r.get("notes") or [])
            out.append(f"`{r['_file'] if '_file' in r else r['benchmark']}` · {str(r['date'])[:10]} · {r['threads']} "
                       f"thread(s) · load {_load(r)} · reference {_reference(r)}" + (f". {notes}" if notes else "") + "\n")
            if r.get("command"):
                out.append(f"```bash\n{r['command']}\n```\n")
            out.append(wide(rows_table(r)))
            if r.get("skipped"):
                out.append("Skipped: " + "; ".join(f"{s.get('model')} ({s.get('why', s.get('skipped', ''))})"
                                                   for s in r["skipped"]) + "\n")
    checks = checks_table(cpu)
    if checks:
        out.append("## Output agreement\n")
        out.append("What each run checked beside its timings (bf16 against float32 zoo; zoo against the reference "
                   "where it ran). The test suite holds the parity fixtures and their tolerances.\n")
        out.append(wide(checks))
    out += _gpu_section(gpu)
    out.append("## Re-run\n")
    out.append("```bash\n" + "\n".join(sorted({r.get("command", "") for r in records if r.get("command")}) or
                                       ["python benchmarks/wavtokenizer.py"]) + "\n```\n")
    return "\n".join(out), plots


def family_section(family: str, records: Iterable[Mapping[str, Any]], page_prefix: str = "../") -> str:
    """A short "Speed" section for a model family's page ("" when no record measures it)."""
    lines = []
    for r in records:
        if str(r.get("device", "cpu")) != "cpu":
            continue
        rows = [row for row in r["rows"] if row_family(r, row) == family]
        if not rows:
            continue
        if r["kind"] == "reducer":
            best = max(rows, key=lambda row: row.get("speedup") or 0)
            lines.append(f"* {r.get('title', r['benchmark'])}: up to {fmt(best.get('speedup'))}x images/s over the "
                         f"unreduced `{best.get('model')}` at feature cosine {fmt(best.get('cosine'))} (`{best.get('config')}`).")
        else:
            for row in rows:
                ratio = f"{fmt(row['speedup'])}x the reference" if row.get("speedup") else f"reference {NOT_MEASURED}"
                lines.append(f"* {_label(row)}: {fmt(row.get('zoo_per_s'))} {row.get('unit', '')} ({ratio}).")
    if not lines:
        return ""
    return ("## Speed\n\nMeasured on CPU, one thread, random weights (details, machine and load: "
            f"[Benchmarks]({page_prefix}{PAGE})).\n\n" + "\n".join(lines[:12]) + "\n")
