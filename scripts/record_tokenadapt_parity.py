"""Record TokenAdapt's hybrid initialisation (Tinycompany-AI/tokenadapt, Apache-2.0) on small
inputs, as a parity fixture for zoo.text.transfer.tokenadapt_embeddings.

The reference's ``src/heuristics.py`` is imported from a local checkout given as the first
argument and driven the way its ``untied.py`` drives it (shared tokens copied, then local and
global heuristics mixed with the global weight); FAISS is replaced by an exact inner-product
search in numpy (IndexFlatIP is exact). Inputs are rebuilt by the test: the testing module's BPE
tokenizers (English -> German), ``HashVectors`` as the auxiliary text embedder, a seeded matrix.

Usage: python scripts/record_tokenadapt_parity.py /tmp/tokenadapt [tests/fixtures/text_tokenizers]
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import torch

SETTINGS = {"temperature": 0.3, "k": 3, "global_weight": 0.3, "threshold": 0.0}


class _FlatIP:
    def __init__(self, dim: int):
        self.x = np.zeros((0, dim), dtype=np.float32)

    def add(self, x: np.ndarray) -> None:
        self.x = np.vstack([self.x, x])

    def search(self, q: np.ndarray, k: int):
        sims = q @ self.x.T
        idx = np.argsort(-sims, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(sims, idx, 1), idx


def _normalize(x: np.ndarray) -> None:
    x /= np.linalg.norm(x, axis=1, keepdims=True)


def main(ref: str, out_dir: str = "tests/fixtures/text_tokenizers") -> None:
    sys.modules["faiss"] = types.SimpleNamespace(Index=object, IndexFlatIP=_FlatIP, normalize_L2=_normalize)
    sys.path.insert(0, str(Path(ref) / "src"))
    from heuristics import calculate_global_embedding, calculate_local_embedding
    from transformers import PreTrainedTokenizerFast

    from zoo_plugins.text_tokenizers import testing as T

    old = PreTrainedTokenizerFast(tokenizer_object=T.bpe_on(T.CORPUS, 330))
    new = PreTrainedTokenizerFast(tokenizer_object=T.bpe_on(T.TARGET_CORPUS, 350))
    embedder = T.HashVectors([], dim=8, seed=3)
    matrix = torch.tensor(np.random.RandomState(0).normal(0, 1, (len(old), 16)), dtype=torch.float32)
    old_vocab, new_vocab = old.get_vocab(), new.get_vocab()
    shared = set(old_vocab) & set(new_vocab)
    unique = sorted(set(new_vocab) - shared)
    strings = {new.decode([new_vocab[t]]) for t in unique} | {old.decode([i]) for i in old_vocab.values()}
    cache = {s: embedder.get_word_vector(s).tolist() for s in strings}
    index_tokens = [t for t, i in old_vocab.items() if old.decode([i]) in cache]
    emb = np.vstack([np.array(cache[old.decode([old_vocab[t]])], dtype=np.float32) for t in index_tokens])
    _normalize(emb)
    index = _FlatIP(emb.shape[1])
    index.add(emb)
    index_to_token = dict(enumerate(index_tokens))
    target = np.zeros((len(new), 16))
    covered = np.zeros(len(new), dtype=bool)
    for t in shared:
        target[new_vocab[t]], covered[new_vocab[t]] = matrix[old_vocab[t]].numpy(), True
    temp, gw = SETTINGS["temperature"] + 1e-5, SETTINGS["global_weight"]
    for t in unique:
        nid = new_vocab[t]
        loc, _ = calculate_local_embedding(t, nid, new, old, cache, cache, matrix, None, temp, torch.float32, "cpu")
        glo, _ = calculate_global_embedding(new.decode([nid]), cache, index, old, index_to_token, old_vocab, matrix, None,
                                            SETTINGS["k"], temp, SETTINGS["threshold"], torch.float32, "cpu")
        if loc is not None and glo is not None:
            target[nid], covered[nid] = ((1 - gw) * loc + gw * glo).numpy(), True
        elif loc is not None or glo is not None:
            target[nid], covered[nid] = (loc if loc is not None else glo).numpy(), True
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "tokenadapt_parity.npz", target=target, covered=covered)
    print(target.shape, int(covered.sum()), "rows set by the heuristics or copied")


if __name__ == "__main__":
    main(*sys.argv[1:])
