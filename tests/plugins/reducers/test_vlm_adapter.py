"""Post-encoder reducers inside transformers VLMs (LLaVA, LLaVA-NeXT, Qwen2-VL) on tiny random models.

What must hold: the language model's prefill sees only the kept visual tokens (its inputs are
captured by a hook on ``language_model``), ``keep=1.0`` generates exactly the unpatched model's
ids, ``handle.remove()`` restores the model (state_dict, hooks, outputs), Qwen2-VL's 3-D rotary ids
are the full sequence's ids at the kept tokens, and a batch (left padding, rows whose reduced
lengths differ) generates what each prompt generates alone.
"""

import pytest
import torch
import vlm_models as vm
from zoo_plugins.reducers.policies.divprune import resolve_keep
from zoo_plugins.reducers.reducers import MMTok

import zoo
from zoo.errors import ReducerError

pytestmark = pytest.mark.filterwarnings("ignore")
CASES = [(cls, method) for cls, methods in vm.METHODS.items() for method in methods]
PRUNERS = ("divprune", "mmtok", "hiprune", "tome")


@pytest.fixture(scope="module", params=list(vm.BUILDERS))
def built(request):
    return request.param, *vm.BUILDERS[request.param]()


def _build(cls):
    return vm.BUILDERS[cls]()


def _generate(model, inputs, n=4):
    with torch.no_grad():
        return model.generate(**inputs, max_new_tokens=n, do_sample=False)


class LMInputs:
    """Records what the language model receives at each call."""

    def __init__(self, model):
        self.calls = []
        self.handle = model.model.language_model.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs):
        x = kwargs.get("inputs_embeds")
        self.calls.append({"length": x.shape[1], "mask": kwargs.get("attention_mask"), "positions": kwargs.get("position_ids")})

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.remove()


def _rows(inputs, visual_tokens):
    """Per row: the (n, kept) of its images, images consumed in row-major order."""
    per_row = (inputs["input_ids"] == vm.IMAGE).sum(1).tolist()
    it, out = iter(visual_tokens), []
    for count in per_row:
        row = []
        while count > 0:
            n, k = next(it)
            row.append((n, k))
            count -= n
        out.append(row)
    return out


@pytest.mark.parametrize("cls, method", CASES, ids=[f"{c}-{m}" for c, m in CASES])
def test_keep_one_generates_the_unpatched_ids_and_reduced_prefill_is_shorter(cls, method):
    model, inputs = _build(cls)
    ref = _generate(model, inputs)
    reducer = zoo.load(method)
    if method != "globalcom2":   # GlobalCom² has no identity setting (crop scales < 1 at keep=1)
        with reducer.apply(model, keep=1.0) as handle:
            assert torch.equal(_generate(model, inputs), ref)
            assert handle.last["reduced_length"] == handle.last["full_length"] == inputs["input_ids"].shape[1]
    keep = vm.METHODS[cls][method]
    with LMInputs(model) as lm, reducer.apply(model, keep=keep) as handle:
        out = _generate(model, inputs)
    assert out.shape == ref.shape and torch.equal(out[:, :inputs["input_ids"].shape[1]], inputs["input_ids"])
    prefill = lm.calls[0]
    rows = _rows(inputs, handle.visual_tokens)
    removed = torch.tensor([sum(n - k for n, k in row) for row in rows])
    assert all(0 < k < n for row in rows for n, k in row)
    if method in PRUNERS and (cls, method) != ("llava_next", "hiprune"):     # any-res HiPrune: keep per view
        assert all(k == resolve_keep(keep, n) for row in rows for n, k in row)
    real = inputs["attention_mask"].sum(1)
    assert prefill["mask"].sum(1).tolist() == (real - removed).tolist()          # the LM sees only the kept tokens
    assert prefill["length"] == handle.last["reduced_length"] == int((real - removed).max())
    assert [c["length"] for c in lm.calls[1:]] == [1, 1, 1]                      # then one token per step
    assert [c["mask"].shape[1] for c in lm.calls[1:]] == [prefill["length"] + i for i in (1, 2, 3)]


def test_remove_restores_the_model_exactly(built):
    cls, model, inputs = built
    inner = model.model
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        before = model(**inputs).logits
    deltas = getattr(inner, "rope_deltas", None)
    method = "globalcom2" if cls == "llava_next" else "hiprune" if cls == "llava" else "mmtok"
    handle = zoo.load(method).apply(model, keep=0.5)
    _generate(model, inputs)
    with torch.no_grad():
        reduced = model(**inputs).logits
    assert reduced.shape[1] < before.shape[1]
    handle.remove()
    handle.remove()                                                    # idempotent
    after_state = model.state_dict()
    assert after_state.keys() == state.keys() and all(torch.equal(after_state[k], v) for k, v in state.items())
    assert not inner._forward_pre_hooks and not inner._forward_hooks and "get_image_features" not in vars(inner)
    if hasattr(inner, "rope_deltas"):
        assert inner.rope_deltas is deltas
    with torch.no_grad():
        assert torch.equal(model(**inputs).logits, before)
    assert "removed" in repr(handle)


def test_qwen2_vl_rotary_ids_are_the_full_sequence_ids_at_the_kept_tokens():
    model, inputs = vm.qwen2_vl()
    inner = model.model
    with torch.no_grad():
        full, _ = inner.get_rope_index(inputs["input_ids"], mm_token_type_ids=inputs["mm_token_type_ids"],
                                       image_grid_thw=inputs["image_grid_thw"], attention_mask=inputs["attention_mask"])
        feats = inner.get_image_features(pixel_values=inputs["pixel_values"], image_grid_thw=inputs["image_grid_thw"],
                                         return_dict=True).pooler_output
    keep = 0.5
    kept_seq = []                                        # expected kept sequence positions per row
    ids, it = inputs["input_ids"], iter(feats)
    for row in range(ids.shape[0]):
        pos = (ids[row] == vm.IMAGE).nonzero()[:, 0].tolist()
        keep_row, i = [p for p in range(ids.shape[1]) if ids[row, p] != vm.IMAGE and inputs["attention_mask"][row, p]], 0
        while i < len(pos):
            f = next(it)
            idx = zoo.load("divprune").reduce(f[None], keep=keep).indices[0].tolist()
            keep_row += [pos[i + j] for j in idx]
            i += f.shape[0]
        kept_seq.append(sorted(keep_row))
    ref_lm = LMInputs(model)
    ref = _generate(model, inputs, n=3)
    ref_lm.handle.remove()
    with LMInputs(model) as lm, zoo.load("divprune").apply(model, keep=keep) as handle:
        _generate(model, inputs, n=3)
        deltas = inner.rope_deltas[:, 0].clone()
    pos = lm.calls[0]["positions"]                        # [4, B, L']: text row, then temporal / height / width
    mask = lm.calls[0]["mask"].bool()
    assert pos.shape[0] == 4
    for row, want in enumerate(kept_seq):
        assert pos[1:, row][:, mask[row]].tolist() == full[:, row, want].tolist()
        assert pos[0, row][mask[row]].tolist() == list(range(len(want)))           # text row: only for masks
    # decoding continues from the full sequence's positions: the same ids as the unreduced model's steps
    for step, ref_step in zip(lm.calls[1:], ref_lm.calls[1:]):
        assert torch.equal(step["positions"][1:], ref_step["positions"][1:])
    top = full.masked_fill(~inputs["attention_mask"].bool()[None], -1).amax(dim=(0, 2))
    assert (deltas + mask.sum(1)).tolist() == (top + 1).tolist()    # a later step without position ids continues too
    assert handle.last["reduced_length"] < handle.last["full_length"]
    assert ref.shape[1] == inputs["input_ids"].shape[1] + 3


@pytest.mark.parametrize("positions", ["compact", "original"])
def test_llava_positions(positions):
    model, inputs = vm.llava()
    with LMInputs(model) as lm, zoo.load("divprune").apply(model, keep=0.25, positions=positions):
        _generate(model, inputs, n=3)
    first, mask = lm.calls[0]["positions"], lm.calls[0]["mask"]
    real = mask.sum(1)
    full_real = inputs["attention_mask"].sum(1)
    for row in range(mask.shape[0]):
        got = first[row][mask[row].bool()].tolist()
        if positions == "compact":
            assert got == list(range(int(real[row])))                               # 0..K-1 over the kept tokens
        else:
            assert got[0] == 0 and got[-1] == int(full_real[row]) - 1 and got == sorted(got)   # full-prompt positions
    for t, step in enumerate(lm.calls[1:]):
        want = (real if positions == "compact" else full_real) + t
        assert step["positions"][:, -1].tolist() == want.tolist()


@pytest.mark.parametrize("cls", list(vm.BUILDERS))
def test_a_batch_generates_what_each_prompt_generates_alone(cls):
    model, inputs = _build(cls)
    method = "globalcom2" if cls == "llava_next" else "divprune"
    with zoo.load(method).apply(model, keep=0.5):
        batch = _generate(model, inputs, n=5)
        ids, mask = inputs["input_ids"], inputs["attention_mask"]
        images = (ids == vm.IMAGE).sum(1).tolist()
        start = 0
        for row in range(ids.shape[0]):
            real = mask[row].bool()
            one = {"input_ids": ids[row][real][None], "attention_mask": mask[row][real][None]}
            if cls == "llava":
                count = images[row] // 16
                one["pixel_values"] = inputs["pixel_values"][start:start + count]
                start += count
            elif cls == "llava_next":
                one["pixel_values"], one["image_sizes"] = inputs["pixel_values"][row:row + 1], inputs["image_sizes"][row:row + 1]
            else:
                grid = inputs["image_grid_thw"]
                per = (grid.prod(-1) // 4).tolist()
                take, total = [], 0
                while total < images[row]:
                    take.append(start + len(take))
                    total += per[take[-1]]
                patches = grid.prod(-1).tolist()
                lo = sum(patches[:take[0]])
                one["pixel_values"] = inputs["pixel_values"][lo:lo + sum(patches[i] for i in take)]
                one["image_grid_thw"] = grid[take]
                one["mm_token_type_ids"] = inputs["mm_token_type_ids"][row][real][None]
                start += len(take)
            alone = _generate(model, one, n=5)
            assert batch[row, -5:].tolist() == alone[0, -5:].tolist()


def test_mmtok_reads_the_prompt_text_from_the_model(monkeypatch):
    model, inputs = vm.llava()
    seen = []
    real_reduce = MMTok.reduce

    def spy(self, tokens, keep=64, text=None, text_mask=None, vision=None, **kw):
        seen.append((text, text_mask, vision))
        return real_reduce(self, tokens, keep=keep, text=text, text_mask=text_mask, vision=vision, **kw)

    monkeypatch.setattr(MMTok, "reduce", spy)
    with zoo.load("mmtok").apply(model, keep=4):
        _generate(model, inputs, n=1)
    embed = model.model.get_input_embeddings()
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    text_rows = [embed(ids[r][(ids[r] != vm.IMAGE) & mask[r].bool()]) for r in range(ids.shape[0])]
    (text, text_mask, vision), = seen                   # the three images have 16 tokens: one batched call
    assert text.shape[0] == 3
    for j, row in enumerate([0, 1, 1]):                 # image -> its prompt's text
        got = text[j][text_mask[j]]
        assert torch.equal(got, text_rows[row])
    with torch.no_grad():                               # vision-vision coverage: the features before the projector
        hidden = model.model.vision_tower(inputs["pixel_values"], output_hidden_states=True).hidden_states[-2][:, 1:]
    torch.testing.assert_close(vision, hidden)


def test_hiprune_reads_the_vision_towers_attention():
    model, inputs = vm.llava()
    tower = model.model.vision_tower
    tower.set_attn_implementation("eager")
    with torch.no_grad():
        attn = tower(inputs["pixel_values"], output_attentions=True).attentions
    from zoo_plugins.reducers.policies.hiprune import attention_scores
    from zoo_plugins.reducers.reducers import HiPrune

    seen = []
    real_reduce = HiPrune.reduce

    def spy(self, tokens, keep=0.334, object_attn=None, deep_attn=None, grid=None, **kw):
        seen.append((object_attn, deep_attn, grid))
        return real_reduce(self, tokens, keep=keep, object_attn=object_attn, deep_attn=deep_attn, grid=grid, **kw)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(HiPrune, "reduce", spy)
        with zoo.load("hiprune").apply(model, keep=8, object_layer=1, deep_layer=-2):
            _generate(model, inputs, n=1)
    (obj, deep, grid), = seen
    assert grid == (4, 4)
    torch.testing.assert_close(obj, attention_scores(attn[0]), rtol=1e-5, atol=1e-6)        # object layer 1 (1-based)
    torch.testing.assert_close(deep, attention_scores(attn[-2]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls, method, match", [
    ("qwen2_vl", "evit", "no class token|has none"),
    ("llava", "globalcom2", "any-res"),
    ("llava_next", "evit", "one view per image"),
    ("llava", "diffrate", "post-encoder reducer"),
    ("llava", "mctf", "post-encoder reducer"),
])
def test_unsupported_combinations_are_refused_by_name(cls, method, match):
    model, inputs = _build(cls)
    with pytest.raises(ReducerError, match=match):
        handle = zoo.load(method).apply(model, keep=0.5)
        try:
            _generate(model, inputs, n=1)
        finally:
            handle.remove()
    assert not model.model._forward_pre_hooks


def test_other_refusals():
    model, inputs = vm.llava()
    with pytest.raises(ReducerError, match="keep="):
        zoo.load("divprune").apply(model)
    with pytest.raises(ReducerError, match="positions"):
        zoo.load("divprune").apply(model, keep=0.5, positions="sideways")
    qwen, _ = vm.qwen2_vl()
    with pytest.raises(ReducerError, match="full sequence"):
        zoo.load("divprune").apply(qwen, keep=0.5, positions="compact")
    qwen25, _ = vm.qwen2_5_vl()
    with pytest.raises(ReducerError, match="windows"):
        zoo.load("hiprune").apply(qwen25, keep=0.5)
    with zoo.load("divprune").apply(model, keep=0.5), pytest.raises(ReducerError, match="input_ids"):
        embeds = model.model.get_input_embeddings()(inputs["input_ids"])
        model(inputs_embeds=embeds, pixel_values=inputs["pixel_values"], attention_mask=inputs["attention_mask"])


def test_text_only_calls_pass_through():
    model, _ = vm.llava()
    ids = torch.tensor([[1, 5, 6, 7]])
    ref = _generate(model, {"input_ids": ids})
    with zoo.load("divprune").apply(model, keep=0.25) as handle:
        assert torch.equal(_generate(model, {"input_ids": ids}), ref)
        assert handle.last == {}


def test_dymu_threshold_gives_a_different_count_per_image():
    model, inputs = vm.llava()
    with LMInputs(model) as lm, zoo.load("dymu").apply(model, threshold=0.0) as handle:
        out = _generate(model, inputs, n=2)
    kept = [k for _, k in handle.visual_tokens]
    assert all(8 <= k < 16 for k in kept)                       # one DToMe step merges at most half
    rows = _rows(inputs, handle.visual_tokens)
    removed = torch.tensor([sum(n - k for n, k in row) for row in rows])
    assert lm.calls[0]["mask"].sum(1).tolist() == (inputs["attention_mask"].sum(1) - removed).tolist()
    assert out.shape[1] == inputs["input_ids"].shape[1] + 2


def test_a_later_class_with_the_same_surface_qwen2_5_vl():
    model, inputs = vm.qwen2_5_vl()
    ref = _generate(model, inputs)
    with zoo.load("divprune").apply(model, keep=1.0):
        assert torch.equal(_generate(model, inputs), ref)
    with LMInputs(model) as lm, zoo.load("divprune").apply(model, keep=0.5) as handle:
        _generate(model, inputs)
    assert [k for _, k in handle.visual_tokens] == [3, 2, 3]
    assert lm.calls[0]["mask"].sum(1).tolist() == (inputs["attention_mask"].sum(1) - torch.tensor([5, 3])).tolist()


@pytest.mark.parametrize("cls", ["llava", "qwen2_vl"])
def test_beam_search_and_several_sequences(cls):
    model, inputs = _build(cls)
    kw = {"max_new_tokens": 4, "num_beams": 2, "num_return_sequences": 2, "do_sample": False}
    with torch.no_grad():
        ref = model.generate(**inputs, **kw)
        with zoo.load("divprune").apply(model, keep=1.0):
            assert torch.equal(model.generate(**inputs, **kw), ref)
        with zoo.load("divprune").apply(model, keep=0.5):
            assert model.generate(**inputs, **kw).shape[0] == 2 * inputs["input_ids"].shape[0]


def test_a_hand_written_decoding_loop_continues_the_reduced_cache():
    model, inputs = vm.llava()
    with torch.no_grad():
        first = model(**inputs, use_cache=True)
        nxt = first.logits[:, -1].argmax(-1, keepdim=True)
        mask = torch.cat([inputs["attention_mask"], torch.ones_like(nxt)], 1)
        ref = model(input_ids=nxt, attention_mask=mask, cache=first.cache).logits
        with zoo.load("divprune").apply(model, keep=1.0):
            first = model(**inputs, use_cache=True)
            torch.testing.assert_close(model(input_ids=nxt, attention_mask=mask, cache=first.cache).logits, ref)
        with zoo.load("divprune").apply(model, keep=0.25):      # the full-length mask is mapped onto the reduced cache
            first = model(**inputs, use_cache=True)
            prompt = first.cache.get_seq_length()
            assert prompt == int((inputs["attention_mask"].sum(1) - torch.tensor([12, 24])).max())
            step = model(input_ids=nxt, attention_mask=mask, cache=first.cache)
            assert step.cache.get_seq_length() == prompt + 1 and step.logits.shape[1] == 1
            with pytest.raises(ReducerError, match="does not extend"):
                model(input_ids=nxt, attention_mask=mask[:, :-3], cache=step.cache)


def test_hiprune_on_any_res_keeps_each_views_share_at_packed_positions():
    model, inputs = vm.llava_next()
    from zoo_plugins.reducers.policies.globalcom2 import unpadded_region

    with zoo.load("hiprune").apply(model, keep=4, object_layer=1) as handle:   # 4 of each view's 16 patches
        _generate(model, inputs, n=1)
    for (n, k), hw in zip(handle.visual_tokens, inputs["image_sizes"].tolist()):
        from transformers.image_processing_utils import select_best_resolution

        best = select_best_resolution(hw, model.config.image_grid_pinpoints)
        rows, cols = best[0] // 32, best[1] // 32
        _, _, h, w = unpadded_region(rows, cols, 4, tuple(hw))
        assert n == 16 + h * (w + 1)
        assert 4 + h <= k <= 4 + h + 4 * rows * cols                   # thumbnail 4, every newline, crop tokens inside the image


def test_hiprune_on_qwen2_vl_reads_the_rotary_attention_per_image():
    model, inputs = vm.qwen2_vl()
    from transformers.models.qwen2_vl import modeling_qwen2_vl as mq
    from zoo_plugins.reducers.reducers import HiPrune

    attn_inputs = []
    tower = model.model.visual
    hooks = [b.attn.register_forward_pre_hook(lambda m, a, k: attn_inputs.append((m, a, k)), with_kwargs=True)
             for b in (tower.blocks[0], tower.blocks[-2])]
    seen, real_reduce = [], HiPrune.reduce

    def spy(self, tokens, keep=0.334, object_attn=None, deep_attn=None, grid=None, **kw):
        seen.append((tokens.shape[1], object_attn, deep_attn, grid))
        return real_reduce(self, tokens, keep=keep, object_attn=object_attn, deep_attn=deep_attn, grid=grid, **kw)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(HiPrune, "reduce", spy)
        with zoo.load("hiprune").apply(model, keep=0.5, object_layer=1, deep_layer=-2):
            _generate(model, inputs, n=1)
    for h in hooks:
        h.remove()

    def column_means(module, args, kwargs):                  # transformers' own rotary, softmax per image
        x = args[0] if args else kwargs["hidden_states"]
        q, k, _ = module.qkv(x).reshape(x.shape[0], 3, module.num_heads, -1).permute(1, 0, 2, 3).unbind(0)
        q, k = mq.apply_rotary_pos_emb_vision(q, k, *kwargs["position_embeddings"])
        cu = kwargs["cu_seqlens"].tolist()
        return [torch.softmax(q[a:b].transpose(0, 1) @ k[a:b].transpose(0, 1).transpose(-1, -2) * module.scaling, -1)
                .mean(0).mean(0) for a, b in zip(cu[:-1], cu[1:])]

    obj_want, deep_want = column_means(*attn_inputs[0]), column_means(*attn_inputs[1])
    grids = {(6, (2, 3)): 0, (4, (2, 2)): 1, (6, (3, 2)): 2}   # images 0..2: merged grids 2x3, 2x2, 3x2
    assert sorted((n, g) for n, _, _, g in seen) == sorted(grids)
    for n, obj, deep, grid in seen:
        j = grids[(n, grid)]
        torch.testing.assert_close(obj[0], obj_want[j].view(-1, 4).mean(1), rtol=1e-5, atol=1e-6)  # 2x2 merge: mean
        torch.testing.assert_close(deep[0], deep_want[j].view(-1, 4).mean(1), rtol=1e-5, atol=1e-6)
