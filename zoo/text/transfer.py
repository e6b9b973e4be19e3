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

TokenAdapt (Tinycompany-AI/tokenadapt, Apache-2.0), written from its description and checked
against its heuristic functions: tokens both vocabularies share keep their rows; every other new
token mixes a *local* estimate (the old tokenizer's pieces of its text, weighted by a softmax over
the mean of their semantic similarity to the whole token and their share of its length) and a
*global* one (its ``k`` nearest old tokens in an auxiliary text-embedding space, softmax of the
similarities, below ``threshold`` dropped), ``(1 - global_weight) * local + global_weight *
global``; tokens neither covers get a random row with the old matrix's mean and standard deviation.

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

__all__ = ["wechsel_embeddings", "tokenadapt_embeddings", "subword_vectors", "procrustes_alignment", "transfer_tokenizer", "METHODS"]

METHODS = ("wechsel", "tokenadapt")


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


def _wechsel_similarities(source_tokenizer: Any, target_tokenizer: Any, source_vectors: Any, target_vectors: Any,
                         dictionary: Sequence[tuple[str, str]] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """WECHSEL's cosine similarities ``[len(target_tokenizer), len(source_tokenizer)]`` between the
    two vocabularies' token vectors (the source space aligned by ``dictionary`` when given), and
    which target tokens have a vector at all (the others get a random row)."""
    src_tok, tgt_tok = _hf(source_tokenizer), _hf(target_tokenizer)
    src = subword_vectors(src_tok, source_vectors)
    tgt = subword_vectors(tgt_tok, target_vectors)
    if dictionary is not None:
        src = src @ procrustes_alignment(source_vectors, target_vectors, dictionary)
    has_vector = tgt.any(axis=1)
    src /= np.linalg.norm(src, axis=1, keepdims=True) + 1e-8
    tgt /= np.linalg.norm(tgt, axis=1, keepdims=True) + 1e-8
    return tgt @ src.T, has_vector


def wechsel_embeddings(source_tokenizer: Any, target_tokenizer: Any, source_matrix: Any, source_vectors: Any,
                       target_vectors: Any, *, dictionary: Sequence[tuple[str, str]] | None = None, neighbors: int = 10,
                       temperature: float = 0.1, seed: int = 1234) -> np.ndarray:
    """WECHSEL's initial embedding matrix for ``target_tokenizer`` (see the module docstring).

    ``source_matrix`` is the model's ``[len(source_tokenizer), D]`` embedding matrix (numpy or
    torch); ``dictionary`` (word pairs) aligns the two vector spaces, ``None`` takes them as
    aligned already. Equal similarities at the ``neighbors``-th place go to the lower source id
    (:func:`top_k`), so the result does not depend on the CPU. Returns ``[len(target_tokenizer), D]``
    float64 (numpy)."""
    matrix = np.asarray(source_matrix.detach().cpu().numpy() if hasattr(source_matrix, "detach") else source_matrix, dtype=np.float64)
    src_tok, tgt_tok = _hf(source_tokenizer), _hf(target_tokenizer)
    if matrix.ndim != 2 or matrix.shape[0] < src_tok.get_vocab_size(with_added_tokens=True):
        raise InputError(f"source_matrix must be [vocab >= {src_tok.get_vocab_size(with_added_tokens=True)}, D], got {matrix.shape}")
    if neighbors < 1 or temperature <= 0:
        raise InputError(f"neighbors must be >= 1 and temperature > 0, got {neighbors}, {temperature}")
    sims, has_vector = _wechsel_similarities(src_tok, tgt_tok, source_vectors, target_vectors, dictionary)
    n_src = sims.shape[1]
    k = min(neighbors, n_src)
    fallback = np.random.RandomState(seed).normal(matrix[:n_src].mean(0), matrix[:n_src].std(0), (sims.shape[0], matrix.shape[1]))
    out = np.zeros((sims.shape[0], matrix.shape[1]))
    for i in range(sims.shape[0]):
        if not has_vector[i]:
            out[i] = fallback[i]
            continue
        best = top_k(sims[i], k)
        w = np.exp(sims[i, best] / temperature)
        out[i] = (w / w.sum()) @ matrix[best]
    src_special = _specials(src_tok)
    for token, idx in _specials(tgt_tok).items():
        if token in src_special:
            out[idx] = matrix[src_special[token]]
    return out


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest ``scores``, largest first; equal scores go to the lower index.

    ``np.argpartition`` alone breaks ties at the k-th place differently on different CPUs (its
    SIMD sort kernels), and tokens whose text gives the same vector tie exactly, so a row of the
    transferred matrix could depend on the machine. Here it does not.

    >>> top_k(np.array([0.1, 0.9, 0.5, 0.9, 0.5]), 3).tolist()
    [1, 3, 2]
    """
    k = min(k, scores.shape[0])
    kth = np.partition(scores, -k)[-k]
    above = np.flatnonzero(scores > kth)
    chosen = np.concatenate([above, np.flatnonzero(scores == kth)[: k - above.shape[0]]])
    return chosen[np.argsort(-scores[chosen], kind="stable")]


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


def tokenadapt_embeddings(old_tokenizer: Any, new_tokenizer: Any, old_matrix: Any, embed: Any, *, temperature: float = 0.3,
                          k: int = 3, global_weight: float = 0.3, threshold: float = 0.0,
                          generator: Any = None) -> np.ndarray:
    """TokenAdapt's hybrid initialisation of ``[len(new_tokenizer), D]`` embeddings (module docstring).

    ``embed(texts) -> [n, d]`` is the auxiliary text-embedding model (the authors use
    nomic-embed-text-v2-moe; any sentence embedder works); defaults are the tool's (temperature
    0.3, 3 neighbours, global weight 0.3, threshold 0). Rows no heuristic covers are drawn from
    ``generator`` (a ``torch.Generator``; never the global RNG)."""
    import torch

    from zoo.sampling.logits import own_generator

    if not 0.0 <= global_weight <= 1.0 or temperature <= 0 or k < 1:
        raise InputError(f"global_weight must lie in [0, 1], temperature > 0 and k >= 1; got {global_weight}, {temperature}, {k}")
    matrix = np.asarray(old_matrix.detach().cpu().numpy() if hasattr(old_matrix, "detach") else old_matrix, dtype=np.float64)
    old, new = _hf(old_tokenizer), _hf(new_tokenizer)
    old_vocab, new_vocab = old.get_vocab(with_added_tokens=True), new.get_vocab(with_added_tokens=True)
    if matrix.ndim != 2 or matrix.shape[0] < max(old_vocab.values()) + 1:
        raise InputError(f"old_matrix must be [vocab >= {max(old_vocab.values()) + 1}, D], got {matrix.shape}")
    gen = own_generator(generator)
    rand = torch.empty(new.get_vocab_size(with_added_tokens=True), matrix.shape[1], dtype=torch.float64)
    rand.normal_(float(matrix.mean()), float(matrix.std(ddof=1)), generator=gen)
    out = rand.numpy()
    unique = []
    for token, nid in new_vocab.items():
        if token in old_vocab:
            out[nid] = matrix[old_vocab[token]]
        else:
            unique.append((token, nid))
    dec_new = {nid: new.decode([nid], skip_special_tokens=False) for _, nid in unique}
    pieces = {nid: old.encode(text, add_special_tokens=False).ids for nid, text in dec_new.items()}
    dec_old = {oid: old.decode([oid], skip_special_tokens=False) for oid in old_vocab.values()}
    texts = sorted(set(dec_new.values()) | set(dec_old.values()))
    vec = dict(zip(texts, np.asarray(embed(texts), dtype=np.float64)))
    index_ids = sorted(old_vocab.values())  # exact ties (tokens that decode alike, e.g. stray bytes as U+FFFD) go to the lower id
    index = np.stack([vec[dec_old[i]] for i in index_ids])
    index /= np.linalg.norm(index, axis=1, keepdims=True)
    temp = temperature + 1e-5
    for _, nid in unique:
        text = dec_new[nid]
        local = glob = None
        if global_weight < 1.0 and pieces[nid] and text:
            full = vec[text]
            subs = np.stack([vec[dec_old[o]] for o in pieces[nid]])
            sims = subs @ full / np.maximum(np.linalg.norm(subs, axis=1) * np.linalg.norm(full), 1e-8)
            share = np.array([len(dec_old[o]) / len(text) for o in pieces[nid]])
            w = _softmax(((_softmax(sims) + share) / 2.0) / temp)
            local = w @ matrix[pieces[nid]]
        if global_weight > 0.0:
            q = vec[text] / np.linalg.norm(vec[text])
            sims = index @ q
            top = np.argsort(-sims, kind="stable")[:k]
            w = _softmax(sims[top] / temp) * (sims[top] >= threshold)
            if w.sum() > 0:
                glob = (w / w.sum()) @ matrix[[index_ids[t] for t in top]]
        if local is not None and glob is not None:
            out[nid] = (1.0 - global_weight) * local + global_weight * glob
        elif local is not None or glob is not None:
            out[nid] = local if local is not None else glob
    return out


def transfer_tokenizer(model: Any, new_tokenizer: Any, *, old_tokenizer: Any, method: str = "wechsel", **options: Any) -> Any:
    """Give a transformers model ``new_tokenizer``: resize its input (and untied output)
    embeddings to the new vocabulary and initialise them with ``method``: ``"wechsel"``
    (:func:`wechsel_embeddings`: ``source_vectors``, ``target_vectors``, ``dictionary``,
    ``neighbors``, ``temperature``) or ``"tokenadapt"`` (:func:`tokenadapt_embeddings`: ``embed``,
    ``temperature``, ``k``, ``global_weight``, ``threshold``, ``generator``; pass the same
    generator state for both matrices of an untied model if their random rows should match).
    Returns the model, changed in place."""
    import torch

    if method not in METHODS:
        raise InputError(f"unknown tokenizer transfer method {method!r}; zoo has {', '.join(METHODS)}")
    needs = ("source_vectors", "target_vectors") if method == "wechsel" else ("embed",)
    for need in needs:
        if need not in options:
            what = "a text-embedding function texts -> [n, d]" if need == "embed" else \
                f"word vectors of the {need.split('_')[0]} language, e.g. a fastText model"
            raise InputError(f"method={method!r} needs {need}= ({what})")
    init = wechsel_embeddings if method == "wechsel" else tokenadapt_embeddings
    size = _hf(new_tokenizer).get_vocab_size(with_added_tokens=True)
    inp = model.get_input_embeddings()
    out_layer = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    tied = out_layer is not None and out_layer.weight is inp.weight
    new_in = init(old_tokenizer, new_tokenizer, inp.weight, **options)
    new_out = None if out_layer is None or tied else init(old_tokenizer, new_tokenizer, out_layer.weight, **options)
    model.resize_token_embeddings(size)
    with torch.no_grad():
        model.get_input_embeddings().weight.copy_(torch.as_tensor(new_in, dtype=inp.weight.dtype))
        if new_out is not None:
            model.get_output_embeddings().weight.copy_(torch.as_tensor(new_out, dtype=out_layer.weight.dtype))
    if hasattr(model, "config"):
        model.config.vocab_size = size
    return model
