"""Values that print well: one-line reprs that name what a value is and never dump a tensor;
per-item indexing of Tokens / Latents."""

from __future__ import annotations

import re

import pytest
import torch

import zoo
from zoo.interfaces import (
    Latents,
    LoadedGenerator,
    LoadedReducer,
    LoadedTokenizer,
    Model,
    ReducedTokens,
    Tokens,
)
from zoo.model import ZooModel, format_count

MAX_REPR = 200  # characters: one line, whatever the batch or model size


def _one_line(text: str) -> str:
    assert "\n" not in text, text
    assert len(text) <= MAX_REPR, (len(text), text)
    assert "tensor(" not in text, text
    return text


def _big_tokens() -> Tokens:
    ids = torch.randint(0, 64000, (64, 256))
    return Tokens(ids=ids, codebook_size=64000, tokenizer="flextok.demo_tiny", lengths=torch.arange(1, 65) * 4,
                  meta={"num_samples": list(range(64)), "sample_rate": 24000})


def test_tokens_repr_names_tokenizer_shape_lengths_codebook():
    text = _one_line(repr(_big_tokens()))
    assert text.startswith("Tokens(tokenizer='flextok.demo_tiny', batch=64, ids=[64, 256] int64 cpu, ")
    assert "lengths=4..256 (mean 130.0)" in text and "codebook=64000" in text
    assert "meta={num_samples, sample_rate}" in text
    equal = Tokens(ids=torch.zeros(2, 32, dtype=torch.long), codebook_size=10)
    assert _one_line(repr(equal)) == "Tokens(tokenizer='?', batch=2, ids=[2, 32] int64 cpu, lengths=32, codebook=10)"
    multi = Tokens(ids=torch.zeros(2, 8, 75, dtype=torch.long), codebook_size=1024)
    assert "codebooks=8" in _one_line(repr(multi))


def test_latents_repr():
    z = Latents(values=torch.randn(16, 128, 16), tokenizer="titok.bl_128_vae", lengths=torch.full((16,), 128))
    assert _one_line(repr(z)) == ("Latents(tokenizer='titok.bl_128_vae', batch=16, values=[16, 128, 16] float32 cpu, "
                                  "lengths=128, dim=16)")


def test_reduced_tokens_repr_core_and_plugin_subclass():
    core = ReducedTokens(torch.randn(8, 64, 1024), torch.zeros(8, 64, dtype=torch.long), torch.full((8, 64, 1), 9.0))
    text = _one_line(repr(core))
    assert text.startswith("ReducedTokens(batch=8, kept=64, tokens=[8, 64, 1024] float32 cpu")
    assert "sizes=9 (stand for 576 tokens per item)" in text
    out = zoo.load("tome").reduce(torch.randn(2, 576, 32), keep=0.25)  # the plugin's subclass keeps the core repr
    text = _one_line(repr(out))
    assert text.startswith("ReducedTokens(batch=2, kept=144, ") and "stand for 576 tokens per item" in text


@pytest.mark.parametrize(
    "index, lengths, ids_len, num_samples",
    [
        (0, [4], 4, [0]),
        (-1, [256], 256, [63]),
        (slice(1, 3), [8, 12], 12, [1, 2]),
        ([5, 0], [24, 4], 24, [5, 0]),
        (torch.tensor([2]), [12], 12, [2]),
    ],
)
def test_tokens_items_and_slices(index, lengths, ids_len, num_samples):
    tokens = _big_tokens()
    item = tokens[index]
    assert isinstance(item, Tokens)
    assert item.lengths.tolist() == lengths
    assert item.max_length == ids_len  # padding no chosen item needs is dropped
    assert item.meta["num_samples"] == num_samples and item.meta["sample_rate"] == 24000
    rows = torch.as_tensor([index] if isinstance(index, int) else range(64)[index] if isinstance(index, slice) else index)
    for got, row in zip(item.tolist(), rows.tolist()):
        assert torch.equal(got, tokens.to_list()[row])


def test_tokens_iterate_and_index_errors():
    tokens = Tokens(ids=torch.arange(6).view(3, 2), codebook_size=10)
    assert [t.ids.tolist() for t in tokens] == [[[0, 1]], [[2, 3]], [[4, 5]]]
    with pytest.raises(IndexError, match="out of range for a batch of 3"):
        tokens[3]
    with pytest.raises(TypeError):
        tokens[1.5]
    assert tokens.tolist()[2].tolist() == tokens.to_list()[2].tolist() == [[4, 5]]


def test_latents_items():
    z = Latents(values=torch.randn(3, 5, 2), lengths=torch.tensor([5, 2, 3]))
    assert z[1].values.shape == (1, 2, 2) and z[1].lengths.tolist() == [2]
    assert torch.equal(z[1:].values[1, :3], z.values[2, :3])
    assert [t.shape for t in z.tolist()] == [t.shape for t in z.to_list()]


@pytest.mark.parametrize("n, text", [(None, "?"), (0, "0"), (999, "999"), (12_345, "12.3K"), (1_234_567, "1.23M"),
                                     (86_567_656, "86.6M"), (641_000_000, "641M"), (1_500_000_000, "1.50B")])
def test_format_count(n, text):
    assert format_count(n) == text


def test_loaded_model_repr_name_and_module_tree():
    model = zoo.load("flextok.demo_128")
    assert model.name == "flextok.demo_128"
    text = _one_line(repr(model))
    count = sum(p.numel() for p in model.parameters())
    assert text.startswith(f"FlexTok('flextok.demo_128', tokenizer, {format_count(count)} params, float32, cpu, ")
    assert "tokens=1-64" in text and "codebook=40" in text and "image_size=128" in text
    assert str(model) == text
    tree = model.module_tree()
    assert tree.startswith("FlexTok(\n") and "(encoder): FlexTokEncoder(" in tree and len(tree.splitlines()) > 50
    assert "(vae): AutoencoderKL(\n" in tree and "(conv_in): Conv2d(" in tree  # a sub-model shows its tree too
    assert repr(model.vae.vae).startswith("AutoencoderKL(") and "\n" not in repr(model.vae.vae)
    assert model.num_parameters() == count


def test_tokens_made_by_a_loaded_model_carry_its_card_name():
    model = zoo.load("flextok.demo_128")
    tokens = model.encode(torch.zeros(2, 3, 128, 128))
    assert tokens.tokenizer == "flextok.demo_128"
    assert repr(tokens).startswith("Tokens(tokenizer='flextok.demo_128', batch=2, ids=[2, 64] int64")


def test_reducer_and_handle_reprs():
    tome = zoo.load("tome")
    assert tome.name == "tome.default" and tome.method == "tome"
    assert _one_line(repr(tome)) == ("ToMe('tome.default', token_reducer, works=in-model + post-encoder, "
                                     "needs=keys/sizes, prop_attn=True)")
    from zoo.compat.torchvision import import_timm

    vit = import_timm().create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, depth=3).eval()
    handle = tome.apply(vit, r=2)
    assert _one_line(repr(handle)) == "ReducerHandle(ToMe on VisionTransformer, active, no forward pass yet)"
    vit(torch.randn(1, 3, 32, 32))
    counts = handle.tokens_per_layer
    assert counts[0] == 5 and counts[-1] < 5 and len(counts) == 3  # 4 patches + class token, merged in 3 blocks
    assert repr(handle) == f"ReducerHandle(ToMe on VisionTransformer, active, tokens 5 -> {counts[-1]} over 3 blocks)"
    handle.remove()
    assert "removed" in repr(handle)


def test_every_first_party_model_class_is_a_zoo_model():
    """Built on the meta device (no memory), every card's model prints one line with its card name."""
    from zoo.param_counts import build_on_meta

    protocol = {"tokenizer": LoadedTokenizer, "generator": LoadedGenerator, "token_reducer": LoadedReducer}
    for name in zoo.list_models():
        model = build_on_meta(name)
        assert isinstance(model, ZooModel), name
        assert isinstance(model, protocol[zoo.get_card(name).kind]), name  # what zoo.load's return type promises
        assert model.name == name
        text = _one_line(repr(model))
        assert re.match(rf"\w+\('{re.escape(name)}', {zoo.get_card(name).kind}\b", text), text


def test_load_is_typed():
    """``zoo.load`` is annotated to return the union of the loaded-model protocols (editors
    complete encode/decode/generate/apply), and the package ships ``py.typed``."""
    import typing
    from pathlib import Path

    hints = typing.get_type_hints(zoo.load, globalns={**vars(zoo.api), "torch": torch, "Model": Model})
    assert hints["return"] == Model == LoadedTokenizer | LoadedGenerator | LoadedReducer
    assert hints["device"] == str | torch.device | None
    assert (Path(zoo.__file__).parent / "py.typed").is_file()
    assert "py.typed" in (Path(zoo.__file__).parents[1] / "pyproject.toml").read_text()


def test_generation_repr_shows_shapes_not_pixels():
    from zoo.sampling.output import Generation

    out = Generation(tokens=_big_tokens()[:2], media=torch.rand(2, 3, 256, 256), meta={"labels": [1, 2], "steps": 8})
    text = repr(out)  # one line, nesting the tokens' repr
    assert "\n" not in text and "tensor(" not in text and len(text) <= 2 * MAX_REPR
    assert text.startswith("Generation(tokens=Tokens(tokenizer='flextok.demo_tiny', batch=2, ")
    assert text.endswith("media=[2, 3, 256, 256] float32 cpu, meta={labels, steps})")


def test_generator_repr_names_its_tokenizer():
    from zoo.param_counts import build_on_meta

    text = repr(build_on_meta("maskgit.titok_l_32"))
    assert text == "ImageBert('maskgit.titok_l_32', generator, 177M params, float32, meta, tokens=32, codebook=4096, tokenizer=titok.l_32)"
