"""The catalogue generators (scripts/docs/zoo_docs.py): every registered model, nothing hand-listed."""

from __future__ import annotations

import re

import pytest

import zoo
from tests.docs.conftest import ROOT


def _table_names(markdown: str) -> list[str]:
    """Model names in the first column of a generated table."""
    return re.findall(r"^\| (?:\*\*)?\[`([a-z0-9_.]+)`\]", markdown, flags=re.MULTILINE)


def test_index_lists_every_registered_model_once(gen):
    pages = gen.catalogue_pages()
    names = _table_names(pages["models/index.md"])
    assert sorted(names) == sorted(zoo.list_models())
    assert len(names) == len(set(names))


def test_one_page_per_family_with_an_anchor_per_model(gen):
    pages = gen.catalogue_pages()
    families = {name.split(".")[0] for name in zoo.list_models()}
    assert {p for p in pages if p != "models/index.md"} == {f"models/{f}.md" for f in families}
    for name in zoo.list_models():
        page = pages[f"models/{name.split('.')[0]}.md"]
        assert f"{{ #{gen.anchor(name)} }}" in page, name
        assert f'zoo.load("{name}")' in page
        assert "## Example" in page and "```python" in page


def test_index_links_point_at_family_page_anchors(gen):
    index = gen.catalogue_pages()["models/index.md"]
    for name in zoo.list_models():
        assert f"({name.split('.')[0]}.md#{gen.anchor(name)})" in index


def test_a_plugin_card_adds_its_row_and_page_with_no_edit(gen, patchvq_plugin):
    pages = gen.catalogue_pages()
    assert "patchvq.tiny" in _table_names(pages["models/index.md"])
    row = next(line for line in pages["models/index.md"].splitlines() if "[`patchvq.tiny`]" in line)
    assert "| 1.34K |" in row  # its parameters, counted at build time from its architecture (meta device)
    page = pages["models/patchvq.md"]
    assert "Registered by plugin `patchvq-test`" in page
    assert 'tok = zoo.load("patchvq")' in page  # the family's default card loads by family name


def test_nav_has_the_index_then_families_sorted(gen):
    nav = gen.nav_entries({"models/index.md": "", "models/titok.md": "", "models/flextok.md": ""})
    assert nav == [{"Catalogue": "models/index.md"}, {"flextok": "models/flextok.md"}, {"titok": "models/titok.md"}]


@pytest.mark.parametrize(
    "parity, status",
    [
        ("untested", "untested"),
        ("", "untested"),
        ("not applicable (example)", "n/a"),
        ("random-weight parity with bytedance/1d-tokenizer (legacy VQ path): ids equal", "✓ vs bytedance/1d-tokenizer"),
        ("random-weight parity with apple/ml-flextok@87d00cc: manifest equal", "✓ vs apple/ml-flextok"),
        ("features atol 1e-4 vs facebookresearch/ToMe on seeded timm ViT", "✓ vs facebookresearch/ToMe"),
        ("kept indices equal to vbdi/divprune on Gaussian tokens", "✓ vs vbdi/divprune"),
        ("ids equal on recorded fixtures", "✓ (see card)"),
        ("no reference implementation or weights published; tested on tiny configs", "no reference"),
    ],
)
def test_parity_status(gen, parity, status):
    assert gen.parity_status(parity) == status


SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.parametrize(
    "record, expected",
    [
        ({"hub_repo": "org/m", "revision": SHA}, f"[org/m](https://huggingface.co/org/m/tree/{SHA}) @ `{SHA[:12]}`"),
        ({"hub_repo": "org/m", "revision": None}, "[org/m](https://huggingface.co/org/m/tree/main): follows the repository's main branch (not pinned)"),
        ({"hub_repo": "org/m", "revision": "main"}, "[org/m](https://huggingface.co/org/m/tree/main) @ `main` (not pinned)"),
        ({"package_dir": "zoo_plugins.flextok:demo/tiny"}, "in package: `zoo_plugins.flextok:demo/tiny`"),
        ({"weights_available": False}, "no weights published"),
    ],
)
def test_revision_label(gen, record, expected):
    assert gen.revision_label(record) == expected


def _record(**changes):
    rec = {
        "name": "fam.a", "family": "fam", "kind": "tokenizer", "modality": "image", "default": True,
        "license": {"code": "MIT", "weights": None, "research_only": False, "notes": ""},
        "license_summary": "code: MIT; weights: MIT", "registered_by": "fam-plugin", "source": "plugin fam",
        "tokens": {"length": "32", "codebook_size": 4096, "notes": ""}, "parity": "untested",
        "description": "A | B", "hub_repo": "org/a", "revision": None, "files": ["model.safetensors"],
    }
    rec.update(changes)
    return rec


def test_research_only_family_gets_a_warning(gen):
    free = gen.family_page("fam", [_record()])
    research = gen.family_page("fam", [_record(license={"code": "X", "weights": "Y", "research_only": True, "notes": ""})])
    assert "Research use only" not in free
    assert '!!! warning "Research use only"' in research


def test_table_cells_escape_pipes(gen):
    rec = _record(tokens={"length": "1|2", "codebook_size": None, "notes": ""})
    index = gen.index_page([rec])
    row = next(line for line in index.splitlines() if "fam.a" in line)
    assert "1\\|2" in row and row.count(" | ") == 10  # 11 columns, none split by the pipe


@pytest.mark.parametrize(
    "kind, modality, expect",
    [
        ("tokenizer", "image", "tok.encode(images)"),
        ("tokenizer", "audio", "tok.encode(wave, sr)"),
        ("tokenizer", "text", "tok.encode(["),
        ("token_reducer", "image", "reducer.reduce("),
        ("generator", "image", "gen.generate("),
    ],
)
def test_generated_example_fits_kind_and_modality(gen, kind, modality, expect):
    code = gen.family_example({"name": "fam.a", "kind": kind, "modality": modality})
    assert expect in code and 'zoo.load("fam.a")' in code
    compile(code.split("```python\n", 1)[1].rsplit("```", 1)[0], "example", "exec")


def test_hand_written_examples_belong_to_registered_families_and_compile(gen):
    families = {n.split(".")[0] for n in zoo.list_models()}
    examples = sorted(gen.EXAMPLES.glob("*.py"))
    assert examples, "docs/examples/ holds the hand-written family examples"
    for path in examples:
        assert path.stem in families, f"docs/examples/{path.name}: no registered family {path.stem!r}"
        compile(path.read_text(), str(path), "exec")
        assert path.read_text().strip() in gen.catalogue_pages()[f"models/{path.stem}.md"]


def test_divprune_example_runs(gen):
    path = gen.EXAMPLES / "divprune.py"
    if "divprune" not in {n.split(".")[0] for n in zoo.list_models()}:
        pytest.skip("the divprune family is not registered")
    namespace: dict = {}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    assert tuple(namespace["out"].tokens.shape) == (2, 58, 1024)


def test_gallery_shows_existing_figures_and_commands_for_missing_ones(gen, tmp_path):
    missing = gen.figure_page(tmp_path)
    assert missing.count('!!! info "Not generated in this build"') == len(gen.FIGURES)
    for fig in gen.FIGURES:
        assert fig["command"] in missing
        target = tmp_path / fig["files"][0]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"")
    present = gen.figure_page(tmp_path)
    assert "Not generated" not in present
    for fig in gen.FIGURES:
        assert f"]({fig['files'][0]})" in present


def test_figure_commands_name_scripts_that_exist(gen):
    for fig in gen.FIGURES:
        script = fig["command"].split()[1]
        assert (ROOT / script).is_file(), fig["command"]


def test_family_page_shows_its_figure_when_it_exists(gen, tmp_path):
    fig = next(f for f in gen.FIGURES if f.get("families"))
    family = fig["families"][0]
    assert "![" not in gen.family_page(family, [_record(name=f"{family}.a", family=family)], docs_dir=tmp_path)
    (tmp_path / fig["files"][0]).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / fig["files"][0]).write_bytes(b"")
    page = gen.family_page(family, [_record(name=f"{family}.a", family=family)], docs_dir=tmp_path)
    assert f"](../{fig['files'][0]})" in page


def test_index_shows_params_download_licence_metric_parity_like_zoo_list(gen):
    """The docs catalogue has zoo list's columns, with the same values."""
    from zoo.card_facts import format_bytes
    from zoo.model import format_count

    index = gen.catalogue_pages()["models/index.md"]
    header = next(line for line in index.splitlines() if line.startswith("| Name |"))
    cols = [c.strip() for c in header.strip("|").split("|")]
    for col in ("Params", "Download", "Licence", "Metric", "Parity", "Hub repo @ revision"):
        assert col in cols, col
    for name in zoo.list_models():
        info = zoo.info(name)
        row = next(line for line in index.splitlines() if f"[`{name}`]" in line)
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", row.strip().strip("|"))]
        cell = dict(zip(cols, cells))
        assert cell["Params"] == ("—" if info["parameters"] == 0 else format_count(info["parameters"])), name
        assert cell["Download"] == format_bytes(info["download_bytes"]), name
        assert ("research only" in cell["Licence"]) == info["license"]["research_only"], name
        assert cell["Metric"] == (info["headline_metric"] or "—").replace("|", "\\|"), name
        assert cell["Parity"] == info["parity_status"], name


def test_family_page_shows_parameters_and_former_names(gen):
    page = gen.catalogue_pages()["models/maskgit.md"]
    assert "| Former names | `maskgit.titok_l32` (still load, with a deprecation note) |" in page
    assert "| Parameters | 177M (177,202,432) |" in page


#: random-weight stand-ins, tiny enough to run here, for the models a generated generator example loads
TINY_MODELS = {
    "flowar": dict(encoder_embed_dim=64, encoder_depth=1, encoder_num_heads=2, decoder_embed_dim=64, decoder_depth=1,
                   decoder_num_heads=2, diffloss_d=1, diffloss_w=64, scale=[1, 2], num_steps=4, img_size=32),
    "mar_vae": dict(ch=32, ch_mult=[1, 1, 1, 1, 2], attn_resolutions=[], num_res_blocks=1),
    "var": dict(depth=2, embed_dim=64, num_heads=2, patch_nums=[1, 2, 3, 4, 6], vae_channels=8, vocab_size=64, image_size=24),
    "var_vqvae": dict(ch=32, ch_mult=[1, 1, 2], num_res_blocks=1, v_patch_nums=[1, 2, 3, 4, 6], vocab_size=64, z_channels=8),
}


@pytest.mark.parametrize("family, returns", [("flowar", "images"), ("var", "generation")])
def test_generated_generator_example_runs_and_says_what_generate_returns(gen, family, returns, monkeypatch, tmp_path):
    """The family page's example, run as written against tiny random-weight models (``zoo.load``
    swapped for one that builds them, the paired decoder included): continuous generators hand
    back images and Latents, token generators a Generation with tokens and decoded media."""
    from zoo.interfaces import Latents, Tokens
    from zoo.sampling import Generation

    real_load = zoo.load
    loaded = []

    def tiny_load(name, **kwargs):
        loaded.append(name)
        kwargs.pop("pretrained", None)
        return real_load(name, pretrained=False, **kwargs, **TINY_MODELS[name.split(".")[0]])

    recs = [r for r in gen.model_records() if r["name"].split(".")[0] == family]
    rec = next(r for r in recs if r.get("default"))
    page_code = gen.family_example(rec, load_name=family)
    assert page_code in gen.family_page(family, recs)
    monkeypatch.setattr(zoo, "load", tiny_load)
    monkeypatch.chdir(tmp_path)
    ns: dict = {}
    exec(compile(page_code.split("```python\n", 1)[1].rsplit("```", 1)[0], f"{family} example", "exec"), ns)
    assert loaded[0] == family and loaded[1] == rec["dependencies"]["vae"]  # the paired decoder, on demand
    images = ns["images"]
    assert images.shape[:2] == (2, 3) and float(images.abs().max()) <= 1 and (tmp_path / f"{family}.png").is_file()
    if returns == "images":
        assert "out" not in ns and isinstance(ns["latents"], Latents) and ns["latents"].values.shape[0] == 1
    else:
        assert isinstance(ns["out"], Generation) and isinstance(ns["out"].tokens, Tokens) and ns["out"].media is images
