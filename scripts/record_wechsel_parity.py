"""Record the ``wechsel`` package's (CPJKU/wechsel 0.0.4, MIT) target embedding matrix on small
inputs, as a parity fixture for zoo.text.transfer.wechsel_embeddings.

The package is imported from a local unpacked copy given as the first argument (``pip download
wechsel --no-deps`` and unzip); the modules it imports at the top but does not use on this path
(fasttext's loader, datasets, nltk, gensim) are stand-ins here. Inputs are rebuilt by the test:
BPE tokenizers trained by ``zoo_plugins.text_tokenizers.testing`` on an English and a German
corpus, ``HashVectors`` as the two fastText models, the testing module's bilingual dictionary and
a seeded source matrix.

Usage: python scripts/record_wechsel_parity.py /tmp/wechsel_pkg [tests/fixtures/text_tokenizers]
"""

from __future__ import annotations

import sys
import tempfile
import types
from pathlib import Path

import numpy as np


def main(package: str, out_dir: str = "tests/fixtures/text_tokenizers") -> None:
    from zoo_plugins.text_tokenizers import testing as T

    fasttext = types.ModuleType("fasttext")
    fasttext.FastText = types.SimpleNamespace(_FastText=T.HashVectors)
    fasttext.util = types.ModuleType("fasttext.util")
    gensim_models = types.ModuleType("gensim.models")
    gensim_models.Word2Vec = type("Word2Vec", (), {})
    datasets = types.ModuleType("datasets")
    datasets.load_dataset = None
    sys.modules.update({"fasttext": fasttext, "fasttext.util": fasttext.util, "nltk": types.ModuleType("nltk"),
                        "datasets": datasets, "gensim": types.ModuleType("gensim"), "gensim.models": gensim_models})
    sys.path.insert(0, package)
    import wechsel
    from transformers import PreTrainedTokenizerFast

    def hf(tok):
        return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|start|>", eos_token="<|end|>", pad_token="<|pad|>")

    src_tok, tgt_tok = T.bpe_on(T.CORPUS, 330), T.bpe_on(T.TARGET_CORPUS, 350)
    words_en = sorted({w.strip(".,;()%$").lower() for t in T.CORPUS for w in t.split()} - {""})
    words_de = sorted({w.strip(".,;()%$").lower() for t in T.TARGET_CORPUS for w in t.split()} - {""})
    src_vec, tgt_vec = T.HashVectors(words_en, dim=8, seed=1), T.HashVectors(words_de, dim=8, seed=2)
    source_matrix = np.random.RandomState(0).normal(0, 1, (src_tok.get_vocab_size(), 16)).astype(np.float32)
    dict_file = Path(tempfile.mkdtemp()) / "dict.txt"
    dict_file.write_text("".join(f"{a}\t{b}\n" for a, b in T.DICTIONARY))
    model = wechsel.WECHSEL(src_vec, tgt_vec, bilingual_dictionary=str(dict_file))
    target, info = model.apply(hf(src_tok), hf(tgt_tok), source_matrix, neighbors=10, temperature=0.1)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "wechsel_target_matrix.npy", target.astype(np.float64))
    print(target.shape, len(info.not_found), "tokens without a vector")


if __name__ == "__main__":
    main(*sys.argv[1:])
