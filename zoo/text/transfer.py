"""Training-free tokenizer transfer: give a language model a new tokenizer with initialised
embeddings.

WECHSEL (Minixhofer et al., NAACL 2022; CPJKU/wechsel, MIT), written from the paper and checked
against the ``wechsel`` package: every token of both tokenizers gets a vector in a static word
embedding space of its language (fastText-style vectors of the token's text, subword information
included); the source space is rotated onto the target space with orthogonal Procrustes on a
bilingual dictionary; each target token's embedding is the softmax(similarity / temperature)
-weighted mean of the source embeddings of its ``neighbors`` most cosine-similar source tokens.
Tokens without a vector get a random row with the source matrix's per-dimension mean and standard
deviation; special tokens both tokenizers share keep their source rows.

Word vectors are any object with ``get_word_vector(word) -> array``, ``get_word_id(word) -> int``
(-1 when unknown) and ``get_dimension()`` -- a loaded ``fasttext`` model fits as it is.

Example:
    >>> import numpy as np
    >>> class Vectors:                                   # a stand-in word embedding space
    ...     def get_dimension(self): return 4
    ...     def get_word_id(self, w): return -1
    ...     def get_word_vector(self, w):
    ...         return np.zeros(4) if not w else np.random.RandomState(sum(map(ord, w))).randn(4)
    >>> from zoo.text.byte_lm import fixed_tokenizer
    >>> old, new = fixed_tokenizer(["a", "b", "ab"]), fixed_tokenizer(["ab", "b", "a", "ba"])
    >>> E = np.arange(8.0).reshape(4, 2)                 # 3 tokens + <s>
    >>> out = wechsel_embeddings(old, new, E, Vectors(), Vectors(), neighbors=1)
    >>> out.shape, out[0].tolist() == E[2].tolist()      # 'ab' is closest to 'ab'
    ((5, 2), True)
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import numpy as np

from zoo.errors import InputError

__all__ = ["wechsel_embeddings", "subword_vectors", "procrustes_alignment", "transfer_tokenizer", "METHODS"]

METHODS = ("wechsel",)


def _hf(tokenizer: Any) -> Any:
    """The ``tokenizers.Tokenizer`` behind a TextTokenizer, a transformers fast tokenizer, or itself."""
    backend = getattr(tokenizer, "backend", None)
    if backend is not None and hasattr(backend, "tok"):
        return backend.tok
    if hasattr(tokenizer, "backend_tokenizer"):
        return tokenizer.backend_tokenizer
    if hasattr(tokenizer, "id_to_token"):
        return tokenizer
    raise InputError(f"tokenizer transfer needs a tokenizer.json tokenizer (tokenizers / transformers fast / zoo "
                     f"TextTokenizer), got {type(tokenizer).__name__}")


def _specials(tok: Any) -> dict[str, int]:
    return {t.content: i for i, t in tok.get_added_tokens_decoder().items() if t.special}


def subword_vectors(tokenizer: Any, vectors: Any) -> np.ndarray:
    """``[len(tokenizer), dim]``: the word vector of each token's decoded text (stripped of
    surrounding spaces; special tokens by their text, as WECHSEL does)."""
    tok = _hf(tokenizer)
    size = tok.get_vocab_size(with_added_tokens=True)
    out = np.zeros((size, vectors.get_dimension()))
    for i in range(size):
        out[i] = vectors.get_word_vector(tok.decode([i], skip_special_tokens=False).strip())
    return out


def procrustes_alignment(source_vectors: Any, target_vectors: Any, dictionary: Iterable[tuple[str, str]]) -> np.ndarray:
    """The orthogonal ``W`` minimising ``||S W - T||`` over dictionary pairs found in both spaces
    (each word also tried lower-cased and title-cased, as WECHSEL does)."""
    src, tgt = [], []
    for s_word, t_word in dictionary:
        for s in (s_word, s_word.lower(), s_word.title()):
            for t in (t_word, t_word.lower(), t_word.title()):
                if source_vectors.get_word_id(s) != -1 and target_vectors.get_word_id(t) != -1:
                    src.append(source_vectors.get_word_vector(s))
                    tgt.append(target_vectors.get_word_vector(t))
    if not src:
        raise InputError("no pair of the bilingual dictionary is in both word embedding spaces: nothing to align with")
    u, _, vt = np.linalg.svd(np.asarray(src).T @ np.asarray(tgt))
    return u @ vt


def wechsel_embeddings(source_tokenizer: Any, target_tokenizer: Any, source_matrix: Any, source_vectors: Any,
                       target_vectors: Any, *, dictionary: Sequence[tuple[str, str]] | None = None, neighbors: int = 10,
                       temperature: float = 0.1, seed: int = 1234) -> np.ndarray:
    """WECHSEL's initial embedding matrix for ``target_tokenizer`` (see the module docstring).

    ``source_matrix`` is the model's ``[len(source_tokenizer), D]`` embedding matrix (numpy or
    torch); ``dictionary`` (word pairs) aligns the two vector spaces, ``None`` takes them as
    aligned already. Returns ``[len(target_tokenizer), D]`` float64 (numpy)."""
    matrix = np.asarray(source_matrix.detach().cpu().numpy() if hasattr(source_matrix, "detach") else source_matrix, dtype=np.float64)
    src_tok, tgt_tok = _hf(source_tokenizer), _hf(target_tokenizer)
    if matrix.ndim != 2 or matrix.shape[0] < src_tok.get_vocab_size(with_added_tokens=True):
        raise InputError(f"source_matrix must be [vocab >= {src_tok.get_vocab_size(with_added_tokens=True)}, D], got {matrix.shape}")
    if neighbors < 1 or temperature <= 0:
        raise InputError(f"neighbors must be >= 1 and temperature > 0, got {neighbors}, {temperature}")
    src = subword_vectors(src_tok, source_vectors)
    tgt = subword_vectors(tgt_tok, target_vectors)
    if dictionary is not None:
        src = src @ procrustes_alignment(source_vectors, target_vectors, dictionary)
    src /= np.linalg.norm(src, axis=1, keepdims=True) + 1e-8
    tgt /= np.linalg.norm(tgt, axis=1, keepdims=True) + 1e-8
    n_src = src.shape[0]
    k = min(neighbors, n_src)
    fallback = np.random.RandomState(seed).normal(matrix[:n_src].mean(0), matrix[:n_src].std(0), (tgt.shape[0], matrix.shape[1]))
    out = np.zeros((tgt.shape[0], matrix.shape[1]))
    sims = tgt @ src.T
    for i in range(tgt.shape[0]):
        if not tgt[i].any():
            out[i] = fallback[i]
            continue
        best = np.argpartition(sims[i], -k)[-k:]
        best = best[np.argsort(-sims[i, best], kind="stable")]
        w = np.exp(sims[i, best] / temperature)
        out[i] = (w / w.sum()) @ matrix[best]
    src_special = _specials(src_tok)
    for token, idx in _specials(tgt_tok).items():
        if token in src_special:
            out[idx] = matrix[src_special[token]]
    return out


def transfer_tokenizer(model: Any, new_tokenizer: Any, *, old_tokenizer: Any, method: str = "wechsel", **options: Any) -> Any:
    """Give a transformers model ``new_tokenizer``: resize its input (and untied output)
    embeddings to the new vocabulary and initialise them with ``method`` (``"wechsel"``:
    :func:`wechsel_embeddings`, options ``source_vectors``, ``target_vectors``, ``dictionary``,
    ``neighbors``, ``temperature``). Returns the model, changed in place."""
    import torch

    if method not in METHODS:
        raise InputError(f"unknown tokenizer transfer method {method!r}; zoo has {', '.join(METHODS)}")
    for need in ("source_vectors", "target_vectors"):
        if need not in options:
            raise InputError(f"method='wechsel' needs {need}= (word vectors of the {need.split('_')[0]} language, e.g. a fastText model)")
    size = _hf(new_tokenizer).get_vocab_size(with_added_tokens=True)
    inp = model.get_input_embeddings()
    out_layer = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    tied = out_layer is not None and out_layer.weight is inp.weight
    new_in = wechsel_embeddings(old_tokenizer, new_tokenizer, inp.weight, **options)
    new_out = None if out_layer is None or tied else wechsel_embeddings(old_tokenizer, new_tokenizer, out_layer.weight, **options)
    model.resize_token_embeddings(size)
    with torch.no_grad():
        model.get_input_embeddings().weight.copy_(torch.as_tensor(new_in, dtype=inp.weight.dtype))
        if new_out is not None:
            model.get_output_embeddings().weight.copy_(torch.as_tensor(new_out, dtype=out_layer.weight.dtype))
    if hasattr(model, "config"):
        model.config.vocab_size = size
    return model
