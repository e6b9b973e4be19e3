"""FlexTok AR (architecture only, no published weights): tiny configs."""

from __future__ import annotations

import pytest
import torch


def tiny(**kw):
    from zoo_plugins.flextok_ar.model import FlexTokAR, FlexTokARConfig

    torch.manual_seed(0)
    cfg = dict(dim=32, depth=2, heads=4, vocab_size=40, max_tokens=12, num_classes=5)
    cfg.update(kw)
    return FlexTokAR(FlexTokARConfig(**cfg)).eval()


def test_cached_sampling_equals_teacher_forcing():
    m = tiny()
    out = m.generate([1, 3], num_tokens=12, seed=4, decode=False, temperature=0.7)
    ids = out.tokens.ids
    assert ids.shape == (2, 12) and out.tokens.codebook_size == 40
    with torch.no_grad():
        logits = m(ids, torch.tensor([1, 3]))  # position i predicts ids[:, i]
    g = torch.Generator().manual_seed(4)
    ref = [torch.multinomial(torch.softmax(logits[:, i] / 0.7, -1), 1, generator=g) for i in range(12)]
    assert torch.equal(torch.cat(ref, 1), ids)


def test_guidance_batches_cond_and_null_rows():
    m = tiny()
    out = m.generate([2], num_tokens=4, seed=0, decode=False, guidance_scale=3.0, temperature=0.0)
    seq = torch.zeros(1, 0, dtype=torch.long)
    for _ in range(4):
        with torch.no_grad():
            c = m._run(m._embed(seq, 0, torch.tensor([2])))[:, -1]
            u = m._run(m._embed(seq, 0, torch.tensor([m.null_class])))[:, -1]
        seq = torch.cat([seq, (u + 3.0 * (c - u)).argmax(-1, keepdim=True)], 1)
    assert torch.equal(out.tokens.ids, seq)


def test_prefix_lengths_and_errors():
    m = tiny()
    for k in (1, 5, 12):
        assert m.generate([0], num_tokens=k, seed=0, decode=False).tokens.ids.shape == (1, k)
    with pytest.raises(ValueError, match="1..12"):
        m.generate([0], num_tokens=13, seed=0, decode=False)
    with pytest.raises(ValueError, match="0..4"):
        m.generate([5], num_tokens=2, seed=0, decode=False)


def test_training_reduces_the_loss():
    m = tiny().train()
    data = torch.randint(0, 40, (4, 12), generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 1, 2, 3])
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    first = None
    for _ in range(60):
        loss = m.loss(data, labels, cond_drop_prob=0.1, generator=g)
        first = first if first is not None else float(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss) < 0.5 * first
    m.eval()
    assert torch.equal(m.generate([1], num_tokens=12, seed=0, decode=False, temperature=0.0).tokens.ids, data[1:2])


def test_card_says_no_weights_and_builds_randomly():
    import zoo
    import zoo_plugins.flextok_ar
    from zoo.errors import ZooError
    from zoo.testing.plugins import temporary_plugin

    card = zoo.get_card("flextok_ar")
    assert not card.weights_available and "NO WEIGHTS" in card.license.notes
    with temporary_plugin(zoo_plugins.flextok_ar, "flextok-ar-test"):
        with pytest.raises(ZooError, match="no published weights"):
            zoo.load("flextok_ar")
        m = zoo.load("flextok_ar", pretrained=False, dim=32, depth=1, heads=2, num_classes=3, max_tokens=8)

    class FakeFlexTok:
        def decode(self, tokens, steps=20):
            return torch.zeros(len(tokens), 3, 8, 8) + tokens.lengths[:, None, None, None] + steps

    out = m.generate([0, 1], num_tokens=3, seed=0, tokenizer=FakeFlexTok(), steps=2)
    assert out.tokens.codebook_size == 64000 and out.media.shape == (2, 3, 8, 8) and float(out.media[0, 0, 0, 0]) == 5.0
