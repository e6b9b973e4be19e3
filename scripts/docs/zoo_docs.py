"""Generate the documentation's model catalogue from zoo's registry (no hand-listed models).

Everything here is a pure function of the registry as it is *in this environment*: the built-in
``registry.yaml`` plus every installed plugin's cards. The mkdocs hook (``scripts/docs/hooks.py``)
calls :func:`catalogue_pages` at build time, so a new card, or an installed third-party plugin,
adds its rows and pages with no hand edit.

Example:
    >>> pages = catalogue_pages()                     # {"models/index.md": "...", "models/titok.md": ...}
    >>> "models/index.md" in pages
    True
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

__all__ = [
    "ROOT", "FIGURES", "model_records", "catalogue_pages", "index_page", "family_page", "family_example",
    "parity_status", "revision_label", "anchor", "figure_page", "nav_entries",
]

ROOT = Path(__file__).resolve().parents[2]
HF = "https://huggingface.co"
#: Optional hand-written example per family (``docs/examples/<family>.py``); otherwise the page
#: shows a generated example chosen by the default model's kind and modality.
EXAMPLES = ROOT / "docs" / "examples"

#: Pictures shown on the gallery page: file under docs/, title, what it shows, the command that makes it.
FIGURES: list[dict[str, Any]] = [
    {
        "files": ["assets/figures/reconstruction_grid.png"],
        "title": "Coarse to fine: the demo tokenizer decoding 1 to N tokens",
        "caption": "Each row is a held-out image (left; never used in training) followed by its reconstruction "
                   "from the first 1, 2, 4, ... 64 tokens of its FlexTok token sequence (5.3 bits per token), "
                   "decoded in one step by the embedded demo model `flextok.demo_128` (128 px, trained on a 2-core "
                   "CPU on images that Python and Debian packages ship; weights inside the package; not for "
                   "research). Any prefix decodes: the flower takes shape from 4-8 tokens on, the coffee cup "
                   "from 16, held-out PSNR rises from 15.9 dB (1 token) to 20.0 dB (64) and LPIPS (AlexNet) "
                   "falls from 0.84 to 0.72.",
        "command": "python scripts/docs/figures.py reconstruction",
        "families": ["flextok"],
    },
    {
        "files": ["assets/figures/audio_spectrogram.png"],
        "title": "Audio: the demo codec at 500 bit/s",
        "caption": "Spectrogram of a held-out espeak-ng sentence (top) and of its reconstruction (bottom) by the "
                   "embedded demo codec `wavtokenizer.demo_tiny` (the WavTokenizer architecture at 16 kHz, 50 "
                   "tokens/s from a 1024-code book, trained on one CPU thread without a GAN; not for research): "
                   "`zoo reconstruct --model wavtokenizer.demo_tiny examples/audio/*.wav --out out/` writes one per clip.",
        "command": "python scripts/docs/figures.py audio",
        "families": ["wavtokenizer"],
    },
    {
        "files": ["assets/figures/reducers.svg", "img/reducers.svg"],
        "title": "Token reducers: speed against fidelity",
        "caption": "Speed-up over the unreduced ViT (images per second, measured in the same run) against "
                   "the cosine between reduced and unreduced features (random weights: how far the features "
                   "move, not accuracy), for each reducer at several strengths. Measured on the CPU of the "
                   "machine that ran the script: compare ratios, not absolute numbers.",
        "command": "python scripts/docs/figures.py reducers",
        "families": ["tome", "diffrate", "evit", "mctf"],
    },
]

_KIND_TITLE = {"tokenizer": "Tokenizer", "generator": "Generator", "token_reducer": "Token reducer"}


# --------------------------------------------------------------------------- registry access


def model_records(pattern: str = "*") -> list[dict[str, Any]]:
    """``zoo.info(name)`` for every registered model, in ``zoo.list_models`` order.

    A card the committed parameter counts do not know (an installed third-party plugin's) has its
    count computed here, at build time, from its architecture on the meta device.

    Example:
        >>> all("family" in r and "registered_by" in r for r in model_records())
        True
    """
    import zoo
    from zoo.errors import ZooError
    from zoo.param_counts import count_parameters

    records = [zoo.info(name) for name in zoo.list_models(pattern)]
    for rec in records:
        if rec.get("parameters") is None:
            try:
                rec["parameters"] = count_parameters(rec["name"])
            except (ZooError, RuntimeError, NotImplementedError, TypeError, ValueError) as exc:
                rec["parameters_error"] = f"{type(exc).__name__}: {exc}"  # the page shows "?"
    return records


def _families(records: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    families: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for rec in records:
        families[rec["family"]].append(rec)
    # the family's default card first, then registry order
    return {
        fam: sorted(recs, key=lambda r: not r.get("default"))
        for fam, recs in sorted(families.items())
    }


# --------------------------------------------------------------------------- small formatters


def anchor(name: str) -> str:
    """The HTML id of a model's section on its family page (dots are awkward in CSS ids).

    Example:
        >>> anchor("flextok.d18_d28_dfn")
        'flextok-d18_d28_dfn'
    """
    return name.replace(".", "-")


def _cell(text: Any) -> str:
    """Text made safe for one Markdown table cell."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").strip()


def parity_status(parity: str) -> str:
    """A short status for the catalogue table from a card's free-text ``parity`` field (the same
    as ``zoo list`` shows: :func:`zoo.card_facts.parity_status`).

    Example:
        >>> parity_status("random-weight parity with bytedance/1d-tokenizer (legacy VQ path): ids equal")
        '✓ vs bytedance/1d-tokenizer'
        >>> parity_status("untested")
        'untested'
    """
    from zoo.card_facts import parity_status as status

    return status(parity)


def _params_label(record: Mapping[str, Any]) -> str:
    """The parameter count ``zoo.info`` reports (computed from the architecture), e.g. ``641M``."""
    from zoo.model import format_count

    n = record.get("parameters")
    return "—" if n == 0 else format_count(n)


def _download_label(record: Mapping[str, Any]) -> str:
    """The card's download size (from its recorded file sizes), ``?`` when not recorded."""
    from zoo.card_facts import format_bytes

    return format_bytes(record.get("download_bytes"))


def revision_label(record: Mapping[str, Any], short: bool = False) -> str:
    """Where the weights come from, as Markdown: hub repo + revision (pinned commit or not), a package, or none.

    Example:
        >>> revision_label({"hub_repo": "org/repo", "revision": "a" * 40, "package_dir": None,
        ...                 "weights_available": True})
        '[org/repo](https://huggingface.co/org/repo/tree/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa) @ `aaaaaaaaaaaa`'
    """
    repo, rev = record.get("hub_repo"), record.get("revision")
    if repo:
        link = f"[{repo}]({HF}/{repo}/tree/{rev or 'main'})"
        if rev and re.fullmatch(r"[0-9a-f]{40}", rev):
            return f"{link} @ `{rev[:12]}`"
        if short:
            return f"{link} @ `{rev}` (not pinned)" if rev else f"{link} (not pinned)"
        return f"{link} @ `{rev}` (not pinned)" if rev else f"{link}: follows the repository's main branch (not pinned)"
    if record.get("package_dir"):
        return f"in package: `{record['package_dir']}`"
    if record.get("kind") == "token_reducer":
        return "none needed"
    if not record.get("weights_available", True):
        return "no weights published"
    return "—"


def _tokens_label(record: Mapping[str, Any]) -> str:
    tokens = record.get("tokens") or {}
    if not tokens:
        return "—"
    length = tokens.get("length") or "?"
    codebook = tokens.get("codebook_size")
    return f"{length} / {codebook:,}" if codebook else f"{length} / continuous"


def _licence_label(record: Mapping[str, Any]) -> str:
    """Code (and weights, if different) licence ids, without parenthetical notes."""
    lic = record["license"]
    code = re.sub(r"\s*\(.*?\)", "", lic["code"]).strip()
    weights = re.sub(r"\s*\(.*?\)", "", lic.get("weights") or "").strip()
    text = code if not weights or weights == code else f"code {code}; weights {weights}"
    return text + (" · **research only**" if lic.get("research_only") else "")


def _paper_label(record: Mapping[str, Any], short: bool = False) -> str:
    """The paper as a link; ``short`` shows ``arXiv:ID (year)`` with the title as the tooltip.

    Example:
        >>> _paper_label({"paper": {"title": "T", "url": "https://arxiv.org/abs/2406.07550", "year": 2024}}, short=True)
        '[arXiv:2406.07550](https://arxiv.org/abs/2406.07550 "T") (2024)'
    """
    paper = record.get("paper")
    if not paper:
        return "—"
    title = _cell(paper["title"])
    year = f" ({paper['year']})" if paper.get("year") else ""
    url = paper.get("url") or ""
    if not url:
        return f"{title}{year}"
    arxiv = re.search(r"arxiv\.org/(?:abs|pdf)/([0-9]{4}\.[0-9]{4,5})", url)
    if short and arxiv:
        return f'[arXiv:{arxiv.group(1)}]({url} "{title.replace(chr(34), chr(39))}"){year}'
    return f"[{title}]({url}){year}"


def _default_name(recs: Sequence[Mapping[str, Any]]) -> str:
    return next((r["name"] for r in recs if r.get("default")), recs[0]["name"])


# --------------------------------------------------------------------------- examples


def family_example(record: Mapping[str, Any], load_name: str | None = None) -> str:
    """A copy-paste Python example for a model, chosen by its kind and modality.

    Example:
        >>> print(family_example({"name": "x.y", "kind": "tokenizer", "modality": "image"}).splitlines()[1])
        import zoo
    """
    name = load_name or record["name"]
    kind, modality = record["kind"], record["modality"]
    if kind == "tokenizer" and modality == "audio":
        return (
            "```python\n"
            "import zoo\n"
            "from zoo.media.audio import load_audio, save_audio\n\n"
            f'tok = zoo.load("{name}")                       # official weights, strict load\n'
            'wave, sr = load_audio("speech.wav")             # [channels, samples], any rate\n'
            "tokens = tok.encode(wave, sr)                   # zoo.Tokens: ids [B, T] + lengths\n"
            "audio = tok.decode(tokens)                      # [B, samples] at tok.sample_rate\n"
            'save_audio("reconstruction.wav", audio, tok.sample_rate)\n'
            "```\n"
        )
    if kind == "tokenizer" and modality == "text":
        return (
            "```python\n"
            "import zoo\n\n"
            f'tok = zoo.load("{name}")                       # the published tokenizer files\n'
            'tokens = tok.encode(["The Court held", "ok"], return_offsets=True)  # zoo.Tokens: ids [B, N] + lengths\n'
            'tokens.meta["offsets"][0]                        # [n, 2] UTF-8 byte span of every token\n'
            "texts = tok.decode(tokens)                       # list[str]; equal to the input when tok.lossless\n"
            "```\n"
        )
    if kind == "tokenizer":
        continuous = record.get("tokens") and not (record.get("tokens") or {}).get("codebook_size")
        load_args = f'"{name}"'
        if record.get("weights_url") and record.get("files"):  # off-Hub weights: a downloaded file
            load_args += f', weights="{record["files"][0]}"'
        load_note = "# the file from weights_url, strict load" if record.get("weights_url") else "# official weights, strict load"
        load_line = f"tok = zoo.load({load_args})".ljust(52) + f" {load_note}\n"
        enc = "latents = tok.encode(images)" if continuous else "tokens = tok.encode(images)"
        enc_note = "# continuous latents" if continuous else "# zoo.Tokens: ids [B, N] + lengths"
        dec = "recon = tok.decode(latents)" if continuous else "recon = tok.decode(tokens)"
        if "encode-only" in (record.get("tags") or []):  # no decoder: encode, and say so
            return (
                "```python\n"
                "import zoo\n"
                "from zoo.media.image import load_images\n\n"
                + load_line
                + 'images = load_images(["cat.png"], size=getattr(tok, "image_size", 256))  # [B, 3, H, W] in [-1, 1]\n'
                f"{enc:<48} {enc_note}\n"
                "# encode-only: tok.decode(...) raises (this model has no decoder)\n"
                "```\n"
            )
        return (
            "```python\n"
            "import zoo\n"
            "from zoo.media.image import load_images, save_grid\n\n"
            + load_line
            + 'images = load_images(["cat.png"], size=getattr(tok, "image_size", 256))  # [B, 3, H, W] in [-1, 1]\n'
            f"{enc:<48} {enc_note}\n"
            f"{dec:<48} # [B, 3, H, W] in [-1, 1]\n"
            'save_grid([[images[0], recon[0]]], "reconstruction.png", col_labels=["input", "decoded"])\n'
            "```\n"
        )
    if kind == "token_reducer":
        return (
            "```python\n"
            "import torch, zoo\n\n"
            f'reducer = zoo.load("{name}")\n'
            "# inside a transformer: patch it in place, run it, restore it exactly\n"
            "# handle = reducer.apply(vit);  logits = vit(images);  handle.remove()\n"
            "# after an encoder: keep a subset of [B, N, D] tokens\n"
            "out = reducer.reduce(torch.randn(2, 576, 1024), keep=0.25)   # ReducedTokens(tokens, indices, sizes)\n"
            "```\n"
        )
    if kind == "generator":
        return _generator_example(record, name)
    return f'```python\nimport zoo\n\nmodel = zoo.load("{name}")\n```\n'


def _generator_example(record: Mapping[str, Any], name: str) -> str:
    """A generator's example, by what its ``generate`` returns: continuous-latent generators
    (no codebook: MAR, LightningDiT, FlowAR, xAR) return decoded images (``return_latents=True``:
    :class:`zoo.interfaces.Latents`); token generators return a :class:`zoo.sampling.Generation`
    (``tokens`` and the decoded ``media``); text-to-speech ones (tag ``tts``) take text.

    Example:
        >>> rec = {"name": "f.a", "kind": "generator", "modality": "image", "tokens": {"codebook_size": None},
        ...        "dependencies": {"vae": "v.b"}}
        >>> "images = gen.generate([207, 360], seed=0)" in _generator_example(rec, "f")
        True
    """
    notes = str((record.get("tokens") or {}).get("notes") or "")
    named = re.search(r"decoded by ([a-z0-9_]+\.[a-z0-9_]+)", notes)
    decoder = (record.get("dependencies") or {}).get("vae") or (named.group(1) if named else None)
    by = f"decoded by {decoder}" if decoder else "decoded by the paired tokenizer"
    stem = name.split(".")[0]

    def line(code: str, note: str) -> str:
        return f"{code:<52} # {note}\n"

    audio = record["modality"] == "audio"
    lines = ["```python\n", "import zoo\n", f"from zoo.media.{'audio import save_audio' if audio else 'image import save_grid'}\n\n",
             f'gen = zoo.load("{name}")\n']
    if record.get("tokens") is not None and not (record.get("tokens") or {}).get("codebook_size"):  # continuous
        lines += [line("images = gen.generate([207, 360], seed=0)", f"[2, 3, H, W] in [-1, 1], {by} (loaded on demand)"),
                  f'save_grid([list(images)], "{stem}.png")\n',
                  line("latents = gen.generate([207], seed=0, return_latents=True)", "zoo.Latents, before the decoder")]
    elif "tts" in (record.get("tags") or ()):
        lines += [line('out = gen.generate("Hello from zoo.", seed=0)', "zoo.sampling.Generation"),
                  line("out.tokens", "zoo.Tokens: the generated codec ids, per-item lengths"),
                  line("wave = out.media[0]", f"[1, samples], {by}"),
                  'save_audio("speech.wav", wave, out.meta["sample_rate"])\n']
    else:
        lines += [line("out = gen.generate([207, 360], seed=0)", "zoo.sampling.Generation (class ids 0..999)"),
                  line("out.tokens", "zoo.Tokens: the generated ids"),
                  line("images = out.media", f"[2, 3, H, W] in [-1, 1], {by}"),
                  f'save_grid([list(images)], "{stem}.png")\n']
    return "".join(lines) + "```\n"


def _cli_example(record: Mapping[str, Any], family: str) -> str:
    lines = [f"zoo list '{family}.*'", f"zoo info {record['name']}", f"zoo download {record['name']}"]
    if record["kind"] == "tokenizer" and record["modality"] == "image" and "encode-only" in (record.get("tags") or []):
        lines.append(f"zoo tokenize images/ --model {record['name']} --out tokens/")
    elif record["kind"] == "tokenizer" and record["modality"] == "image":
        lines.append(f"zoo reconstruct cat.png --model {record['name']} --out grid.png")
    elif record["kind"] == "tokenizer" and record["modality"] == "audio":
        lines.append(f"zoo reconstruct speech.wav --model {record['name']} --out reconstruction.wav")
    elif record["kind"] == "tokenizer" and record["modality"] == "text":
        lines.append(f"zoo text-stats corpus.txt --model {record['name']}")
    return "```bash\n" + "\n".join(lines) + "\n```\n"


# --------------------------------------------------------------------------- pages


def index_page(records: Sequence[Mapping[str, Any]]) -> str:
    """The catalogue index: one table row per registered model, linked to its family page."""
    families = _families(records)
    kinds = defaultdict(int)
    for rec in records:
        kinds[rec["kind"]] += 1
    summary = ", ".join(f"{n} {_KIND_TITLE.get(k, k).lower()}{'s' if n != 1 else ''}" for k, n in sorted(kinds.items()))
    out = [
        "---\nhide:\n  - toc\n---\n",  # the side navigation stays (readable at 1280 px)
        "# Model catalogue\n",
        f"{len(records)} models in {len(families)} families ({summary or 'none'}), generated from the registry "
        "when this site was built: the built-in `registry.yaml` and every installed plugin. "
        "`zoo list` prints the same catalogue; a family name alone loads its default model (★).\n",
        '<div class="zoo-catalogue" markdown>\n',
        "| Name | Kind | Modality | Params | Download | Tokens / codebook | Licence | Metric | Paper | Hub repo @ revision | Parity |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for fam, recs in families.items():
        for rec in recs:
            name = f"[`{rec['name']}`]({fam}.md#{anchor(rec['name'])})"
            if rec.get("default"):
                name = f"{name} ★"
            out.append(
                f"| {name} | {_KIND_TITLE.get(rec['kind'], rec['kind'])} | {rec['modality']} "
                f"| {_params_label(rec)} | {_download_label(rec)} "
                f"| {_cell(_tokens_label(rec))} | {_cell(_licence_label(rec))} | {_cell(rec.get('headline_metric') or '—')} "
                f"| {_paper_label(rec, short=True)} "
                f"| {revision_label(rec, short=True)} | {_cell(parity_status(rec.get('parity', '')))} |"
            )
    out.append("\n</div>\n")
    out.append(
        "**Params** are counted from each architecture (built on PyTorch's meta device with "
        "`pretrained=False`, never typed by hand). **Download** is the size of the card's own files "
        "as recorded by `zoo registry pin` (`?` until a card is pinned; `—` when nothing is downloaded). "
        "**Metric** is the first result the card reports, as published by the authors (all of them "
        "are on the family page). "
        "**Parity** is each plugin's own record of how it proved agreement with the reference "
        "implementation (see the family page for the full statement and tolerances). "
        "**Revisions** marked *not pinned* follow the repository's main branch: the files can change "
        "under the same name. For reproducible runs pass `zoo.load(name, revision=...)` or `name@<commit>`; "
        "a maintainer pins the catalogue with `zoo registry pin` (commit + file sizes and sha256).\n"
    )
    out.append("## Families\n")
    out.append("Each family page has a copy-paste example and every model's full record.\n")
    for fam, recs in families.items():
        out.append(f"* [{fam}]({fam}.md): {len(recs)} model{'s' if len(recs) != 1 else ''}, {_KIND_TITLE.get(recs[0]['kind'], recs[0]['kind']).lower()}, {recs[0]['modality']}")
    return "\n".join(out) + "\n"


def _model_section(rec: Mapping[str, Any], families: Mapping[str, Any]) -> str:
    name = rec["name"]
    rows = [
        ("Load", f'`zoo.load("{name}")`' + (f" or `zoo.load(\"{rec['family']}\")`" if rec.get("default") else "")),
        ("Kind / modality", f"{_KIND_TITLE.get(rec['kind'], rec['kind'])} / {rec['modality']}"),
        ("Parameters", _params_label(rec) + (f" ({rec['parameters']:,})" if rec.get("parameters") else "")),
        ("Download", _download_label(rec)),
        ("Tokens / codebook", _tokens_label(rec) + (f" — {rec['tokens']['notes']}" if (rec.get("tokens") or {}).get("notes") else "")),
        ("Weights", revision_label(rec)),
        ("Files", ", ".join(f"`{f}`" for f in rec.get("files") or []) or "—"),
        *([("Download from", f"[{rec['weights_url']}]({rec['weights_url']}) (off the Hub: "
            f'`zoo.load("{name}", weights=PATH)`)')] if rec.get("weights_url") else []),
        ("Licence", rec["license_summary"]),
        ("Paper", _paper_label(rec)),
        ("Parity", rec.get("parity") or "untested"),
        ("Registered by", f"`{rec.get('registered_by', '?')}` ({rec.get('source') or 'plugin'})"),
    ]
    if rec.get("aliases"):
        rows.insert(1, ("Former names", ", ".join(f"`{a}`" for a in rec["aliases"]) + " (still load, with a deprecation note)"))
    deps = rec.get("dependencies") or {}
    if deps:
        links = []
        for role, dep in deps.items():
            fam = dep.split(".", 1)[0]
            links.append(f"{role}: [`{dep}`]({fam}.md#{anchor(dep)})" if fam in families else f"{role}: `{dep}`")
        rows.insert(4, ("Needs", ", ".join(links)))
    if rec.get("metrics"):
        rows.append(("Reported metrics", ", ".join(f"{k} {v}" for k, v in rec["metrics"].items())))
    if rec.get("tags"):
        rows.append(("Tags", " ".join(f"`{t}`" for t in rec["tags"])))
    out = [f"## `{name}` {{ #{anchor(name)} }}\n"]
    if rec.get("description"):
        out.append(rec["description"].strip() + "\n")
    out.append("| | |\n| --- | --- |")
    out += [f"| {k} | {_cell(v)} |" for k, v in rows]
    out.append("")
    if rec.get("notes"):
        out.append(f"!!! note\n    {rec['notes'].strip()}\n")
    if rec.get("config"):
        out.append('??? info "Config set by the card"\n')
        out.append("    ```json\n" + "\n".join("    " + line for line in json.dumps(rec["config"], indent=2).splitlines()) + "\n    ```\n")
    return "\n".join(out)


def _family_figures(family: str, docs_dir: Path) -> list[str]:
    out = []
    for fig in FIGURES:
        found = next((f for f in fig["files"] if (docs_dir / f).is_file()), None)
        if family in fig.get("families", ()) and found:
            out.append(f"![{fig['title']}](../{found}){{ loading=lazy }}\n")
            out.append(f"{fig['caption']} Made by `{fig['command']}` ([gallery](../gallery.md)).\n")
    return out


def family_page(family: str, records: Sequence[Mapping[str, Any]], all_families: Mapping[str, Any] | None = None,
                docs_dir: str | Path | None = None) -> str:
    """One page per family: summary, licence warning, copy-paste example, then every model."""
    recs = list(records)
    all_families = all_families or {family: recs}
    default = _default_name(recs)
    default_rec = next(r for r in recs if r["name"] == default)
    kinds = sorted({_KIND_TITLE.get(r["kind"], r["kind"]).lower() for r in recs})
    modalities = sorted({r["modality"] for r in recs})
    owners = sorted({r.get("registered_by", "?") for r in recs})
    out = [f"# {family}\n"]
    out.append(
        f"{len(recs)} model{'s' if len(recs) != 1 else ''}: {', '.join(kinds)} for {', '.join(modalities)}. "
        f"Default: `{default}` (`zoo.load(\"{family}\")`). Registered by plugin {', '.join(f'`{o}`' for o in owners)}.\n"
    )
    papers = {(r["paper"]["title"], r["paper"].get("url", "")): r for r in recs if r.get("paper")}
    if papers:
        out.append("Paper" + ("s" if len(papers) > 1 else "") + ": " + "; ".join(_paper_label(r) for r in papers.values()) + "\n")
    research = [r["name"] for r in recs if r["license"].get("research_only")]
    if research:
        which = "All models" if len(research) == len(recs) else ", ".join(f"`{n}`" for n in research)
        out.append(f'!!! warning "Research use only"\n    {which} in this family are licensed for research use only: '
                   f"{_cell(default_rec['license_summary'])}. `zoo info NAME` prints the terms.\n")
    out.append("## Example\n")
    override = EXAMPLES / f"{family}.py"
    if override.is_file():
        out.append(f"```python\n{override.read_text(encoding='utf-8').strip()}\n```\n")
    else:
        out.append(family_example(default_rec, load_name=family if default_rec.get("default") else default))
    out.append(_cli_example(default_rec, family))
    out += _family_figures(family, Path(docs_dir) if docs_dir else ROOT / "docs")
    out.append("## Models\n")
    out.append("| Name | Params | Tokens / codebook | Metric | Weights | Parity |\n| --- | --- | --- | --- | --- | --- |")
    for rec in recs:
        out.append(f"| [`{rec['name']}`](#{anchor(rec['name'])}) | {_params_label(rec)} | {_cell(_tokens_label(rec))} "
                   f"| {_cell(rec.get('headline_metric') or '—')} | {revision_label(rec)} | {_cell(parity_status(rec.get('parity', '')))} |")
    out.append("")
    for rec in recs:
        out.append(_model_section(rec, all_families))
    return "\n".join(out) + "\n"


def figure_page(docs_dir: str | Path) -> str:
    """The gallery: every picture in :data:`FIGURES` that exists under ``docs_dir``; a missing
    one shows the command that makes it (so the site builds, strict, either way)."""
    docs_dir = Path(docs_dir)
    out = ["# Gallery\n", "Every picture here is made by a script in the repository, never drawn by hand: "
           "re-run the command under it to regenerate it on your machine.\n"]
    for fig in FIGURES:
        out.append(f"## {fig['title']}\n")
        found = next((f for f in fig["files"] if (docs_dir / f).is_file()), None)
        if found:
            out.append(f"![{fig['title']}]({found}){{ loading=lazy }}\n")
            out.append(fig["caption"] + "\n")
            out.append(f"Made by: `{fig['command']}`\n")
        else:
            out.append(f'!!! info "Not generated in this build"\n    {fig["caption"]}\n\n'
                       f"    Generate it with `{fig['command']}`, then rebuild the site.\n")
    return "\n".join(out)


def catalogue_pages(records: Sequence[Mapping[str, Any]] | None = None, docs_dir: str | Path | None = None) -> dict[str, str]:
    """``{path under docs/: markdown}`` for the index and one page per family."""
    records = model_records() if records is None else list(records)
    families = _families(records)
    pages = {"models/index.md": index_page(records)}
    for fam, recs in families.items():
        pages[f"models/{fam}.md"] = family_page(fam, recs, families, docs_dir=docs_dir)
    return pages


def nav_entries(pages: Mapping[str, str]) -> list[dict[str, str]]:
    """mkdocs ``nav`` entries for the generated catalogue: the index, then families A-Z."""
    out = [{"Catalogue": "models/index.md"}]
    out += [{Path(p).stem: p} for p in sorted(pages) if p != "models/index.md"]
    return out
