"""A tiny LLMLingua-2 classifier in the official repo layout, made offline: a tokenizer trained
here on a generated corpus (``tokenizers``: unigram for XLM-R, WordPiece for BERT; training is not
bit-reproducible across runs, so the trained ``tokenizer.json`` files are committed under
tests/fixtures/llmlingua2/ and only retrained when missing), random weights from a per-key seed
(``zoo.testing.weights``), ``config.json`` / ``tokenizer.json`` / ``tokenizer_config.json`` /
``special_tokens_map.json`` / ``model.safetensors`` as the hub repos hold them.

The fixture recorder (outside the repository) writes the same folder and runs the ``llmlingua``
package on it; the tests write it again and run zoo.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import torch

FIXTURES = Path(__file__).parents[2] / "fixtures" / "llmlingua2"
WORDS = ("the meeting budget council vote city park road plan school water project report member chair motion "
         "public item agenda approve review staff fund cost year month week night street police fire housing "
         "traffic safety library program contract service district state county board minute discussion "
         "question answer agree propose amend second third first million thousand percent about against "
         "with from into over under before after during because while which where there their they we you").split()
PUNCT = [".", ",", "?", "!", ":", ";", "(", ")", "-", "'"]


def corpus(n_sentences: int = 400, seed: int = 0) -> list[str]:
    """Sentences of the word list with numbers, capitals and punctuation (deterministic)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n_sentences):
        words = [rng.choice(WORDS) for _ in range(rng.randint(4, 14))]
        if rng.random() < 0.3:
            words.insert(rng.randrange(len(words)), str(rng.randint(1, 2025)))
        if rng.random() < 0.3:
            words[0] = words[0].capitalize()
        if rng.random() < 0.2:
            words.insert(rng.randrange(1, len(words)), rng.choice(PUNCT[1:]))
        out.append(" ".join(words) + rng.choice([".", ".", "?", "!"]))
    return out


def prompt(n_sentences: int, seed: int) -> str:
    """A long prompt (a meeting transcript of generated sentences; some with newlines)."""
    rng = random.Random(seed)
    sents = corpus(n_sentences, seed + 100)
    return "".join(s + ("\n" if rng.random() < 0.1 else " ") for s in sents).strip()


def train_tokenizer(kind: str = "xlm-roberta"):
    """A small tokenizer: SentencePiece-style unigram with ``▁`` word starts (XLM-R) or WordPiece ``##`` pieces (BERT)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    if kind == "xlm-roberta":
        special = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
        tok = Tokenizer(models.Unigram())
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.decoder = decoders.Metaspace()
        trainer = trainers.UnigramTrainer(vocab_size=420, special_tokens=special, unk_token="<unk>", show_progress=False)
        tok.train_from_iterator(corpus(), trainer)
        tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
                                                           special_tokens=[("<s>", 0), ("</s>", 2)])
        data = json.loads(tok.to_str())  # unigram scores vary in the last bit between runs (threaded sums): round them
        data["model"]["vocab"] = [[piece, round(score, 6)] for piece, score in data["model"]["vocab"]]
        tok = Tokenizer.from_str(json.dumps(data))
    else:
        special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.normalizer = normalizers.BertNormalizer(lowercase=False)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece()
        trainer = trainers.WordPieceTrainer(vocab_size=420, special_tokens=special, show_progress=False)
        tok.train_from_iterator(corpus(), trainer)
        tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
                                                           special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    return tok


def hf_config(kind: str, vocab_size: int) -> dict:
    common = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, hidden_act="gelu",
                  hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1, initializer_range=0.02, layer_norm_eps=1e-5,
                  vocab_size=vocab_size, id2label={"0": "LABEL_0", "1": "LABEL_1"}, label2id={"LABEL_0": 0, "LABEL_1": 1})
    if kind == "xlm-roberta":
        return dict(architectures=["XLMRobertaForTokenClassification"], model_type="xlm-roberta", max_position_embeddings=514,
                    type_vocab_size=1, pad_token_id=1, bos_token_id=0, eos_token_id=2, **common)
    return dict(architectures=["BertForTokenClassification"], model_type="bert", max_position_embeddings=512,
                type_vocab_size=2, pad_token_id=0, **common)


def _init(key: str, shape: tuple[int, ...]) -> tuple[float, float]:
    """(mean, std): LayerNorm weights 1, biases 0, a wide classifier so keep probabilities spread out."""
    if key.endswith("LayerNorm.weight"):
        return 1.0, 0.0
    if key.endswith(".bias"):
        return 0.0, 0.0 if "classifier" not in key else 0.5
    return 0.0, 1.5 if key.startswith("classifier") else 0.2


def write_model(folder: Path, kind: str = "xlm-roberta", seed: int = 0) -> Path:
    """Write the tiny classifier's repo files into ``folder`` (created); return it."""
    from safetensors.torch import save_file

    from zoo.testing.weights import seeded_state_dict

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    from tokenizers import Tokenizer

    trained = FIXTURES / kind / "tokenizer.json"
    if not trained.exists():
        trained.parent.mkdir(parents=True, exist_ok=True)
        train_tokenizer(kind).save(str(trained))
    tok = Tokenizer.from_file(str(trained))
    (folder / "tokenizer.json").write_text(trained.read_text())
    cfg = hf_config(kind, tok.get_vocab_size())
    (folder / "config.json").write_text(json.dumps(cfg, indent=2))
    if kind == "xlm-roberta":
        special = dict(bos_token="<s>", eos_token="</s>", unk_token="<unk>", sep_token="</s>", pad_token="<pad>", cls_token="<s>",
                       mask_token="<mask>")
        tcfg = dict(tokenizer_class="XLMRobertaTokenizer", model_max_length=512, **special)
    else:
        special = dict(unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]", cls_token="[CLS]", mask_token="[MASK]")
        tcfg = dict(tokenizer_class="BertTokenizer", do_lower_case=False, model_max_length=512, **special)
    (folder / "tokenizer_config.json").write_text(json.dumps(tcfg, indent=2))
    (folder / "special_tokens_map.json").write_text(json.dumps(special, indent=2))
    manifest = _manifest(kind, cfg)
    state = seeded_state_dict(manifest, seed=seed, init=_init)
    save_file({k: v.contiguous() for k, v in state.items()}, str(folder / "model.safetensors"))
    return folder


def _manifest(kind: str, cfg: dict) -> dict:
    from zoo.compat.torchvision import ensure_torchvision

    ensure_torchvision()
    import transformers

    if kind == "xlm-roberta":
        model = transformers.XLMRobertaForTokenClassification(transformers.XLMRobertaConfig(**cfg))
    else:
        model = transformers.BertForTokenClassification(transformers.BertConfig(**cfg))
    return {k: (tuple(v.shape), str(v.dtype).replace("torch.", "")) for k, v in model.state_dict().items() if v.dtype == torch.float32}


def count_tokens(text: str) -> int:
    """The stand-in for GPT-3.5's tokenizer (tiktoken's files cannot be fetched here): words and single punctuation."""
    import re

    return len(re.findall(r"\w+|[^\w\s]", text))
