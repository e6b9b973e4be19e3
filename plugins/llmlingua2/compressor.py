"""LLMLingua-2 prompt compression (Pan et al., 2024): a token classifier scores every word of the
prompt and the least useful ones are dropped.

The method is the ``llmlingua`` package's ``PromptCompressor.compress_prompt_llmlingua2``
(microsoft/LLMLingua, token-level path) step for step: force tokens that the tokenizer splits are
mapped to added ``[NEWi]`` tokens; each context is cut into chunks of at most 510 tokens, ending at
the last ``.`` / newline (``chunk_end_tokens``) in the window; the classifier's keep probability of
each token (softmax, label 1) is merged into words (SentencePiece ``▁`` starts for XLM-R, ``##``
continuations for BERT; a word's probability is the mean, or the first, of its tokens'; force
tokens count 1.0, and digits too with ``force_reserve_digit``); per chunk, the threshold is the
``int(100 * (1 - rate) + 1)``-th percentile of the word probabilities repeated once per target-LM
token of the word, and a word is kept when its probability is above it. ``target_tokens`` sets
``rate = target_tokens / original tokens``.

As in the reference, every chunk is wrapped in the strings ``[CLS]`` / ``[SEP]`` whatever the
classifier (its dataset class defaults to mBERT's names), so XLM-R sees ``<unk>`` at both ends.
Differences, on purpose: chunks are padded to the longest in their batch instead of 512 tokens
(masked positions change nothing; keep probabilities agree to ~1e-7); a chunk whose first token
does not start a word starts a new word (the reference fails there). With several contexts,
``use_context_level_filter=True`` first drops whole contexts by their mean word probability (the
reference's coarse stage, with its defaults).

Token counts use GPT-3.5's tokenizer (``tiktoken``'s ``cl100k_base``) as the reference does;
``token_counter="classifier"`` counts the classifier's own tokens and any ``str -> int`` callable
works (tiktoken fetches its files from the network on first use).
"""

from __future__ import annotations

import copy
import re
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from zoo.errors import ConfigError, InputError, InputTypeError, ReducerError, ZooError
from zoo.interfaces import ReducedTokens
from zoo.model import ZooModel

__all__ = ["CompressedPrompt", "LLMLingua2", "gpt35_token_counter"]

MAX_SEQ_LEN = 512
MAX_FORCE_TOKENS = 100
_CLS, _SEP, _PAD = "[CLS]", "[SEP]", "[PAD]"
_WORD_SPLIT = re.compile(r'\b\w+\b|[<>=/!@#$%^&*()?":{}|\\`~;_+-]')


@dataclass(repr=False)
class CompressedPrompt:
    """What ``compress`` returns.

    Attributes:
        text: the compressed prompt (contexts joined by a blank line, as the reference does).
        texts: one compressed string per input context.
        words: every word of the original prompt as the classifier saw it.
        probabilities: each word's keep probability (force tokens 1.0); None when nothing had
            to be dropped (rate 1: the reference then runs no model).
        kept: for each word, whether it is in ``text``.
        origin_tokens, compressed_tokens: target-LM token counts before and after.
    """

    text: str
    texts: list[str]
    words: list[str]
    probabilities: list[float] | None
    kept: list[bool]
    origin_tokens: int
    compressed_tokens: int
    rate: float = field(default=1.0)

    @property
    def kept_words(self) -> list[str]:
        return [w for w, k in zip(self.words, self.kept) if k]

    @property
    def ratio(self) -> float:
        """Compression ratio: original / compressed tokens (1 when nothing is left, as the reference)."""
        return 1.0 if self.compressed_tokens == 0 else self.origin_tokens / self.compressed_tokens

    def __repr__(self) -> str:
        return (f"CompressedPrompt({self.ratio:.1f}x: {self.origin_tokens} -> {self.compressed_tokens} tokens, "
                f"{sum(self.kept)}/{len(self.words)} words kept)")


def gpt35_token_counter() -> Callable[[str], int]:
    """GPT-3.5's token count (tiktoken ``cl100k_base``), the reference's ``oai_tokenizer``."""
    try:
        import tiktoken
    except ModuleNotFoundError:
        raise ZooError("LLMLingua-2 counts tokens with GPT-3.5's tokenizer (tiktoken), which is not installed: "
                       "`pip install tiktoken`, or pass token_counter='classifier' (the classifier's tokens) "
                       "or a callable str -> int") from None
    try:
        encoding = tiktoken.encoding_for_model("gpt-3.5-turbo")
    except Exception as exc:  # noqa: BLE001 -- tiktoken downloads its file on first use; any failure means the same fix
        raise ZooError(f"tiktoken could not load GPT-3.5's encoding ({type(exc).__name__}: {exc}); it downloads it on first use: "
                       "run once with network access (or set TIKTOKEN_CACHE_DIR to a copy), or pass "
                       "token_counter='classifier' or a callable str -> int") from None
    return lambda text: len(encoding.encode(text))


def _word_probs(token_probs: list[list[Any]], mode: str) -> list[Any]:
    """A word's probability from its tokens': the mean (as the reference sums them: float32 numpy scalars) or the first."""
    return [sum(p) / len(p) for p in token_probs] if mode == "mean" else [p[0] for p in token_probs]


class LLMLingua2(ZooModel, torch.nn.Module):
    """An LLMLingua-2 compressor: a transformers token classifier plus its tokenizer."""

    def __init__(self, classifier: torch.nn.Module, family: str):
        super().__init__()
        if family not in ("xlm-roberta", "bert"):
            raise ConfigError(f"LLMLingua-2 classifiers are XLM-RoBERTa or BERT token classifiers; got model_type {family!r}")
        self.classifier = classifier
        self.family = family
        self.tokenizer: Any = None
        self.added_tokens = [f"[NEW{i}]" for i in range(MAX_FORCE_TOKENS)]

    def describe_facts(self) -> dict[str, Any]:
        return {"classifier": self.family, "tokenizer": "attached" if self.tokenizer is not None else "none"}

    # ------------------------------------------------------------------ setup
    def attach_tokenizer(self, tokenizer: Any) -> None:
        """Use ``tokenizer`` and add the 100 ``[NEWi]`` force-token slots, as ``init_llmlingua2`` does.

        The embedding matrix grows by 100 rows drawn by transformers' ``resize_token_embeddings``
        (mean resizing) from the RNG seeded with 42, exactly as the reference's
        ``seed_everything(42)`` leaves it; the caller's global RNG state is restored afterwards.
        """
        self.tokenizer = tokenizer
        self.special_tokens = {v for k, v in tokenizer.special_tokens_map.items() if k != "additional_special_tokens"}
        tokenizer.add_special_tokens({"additional_special_tokens": self.added_tokens})
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(42)
            self.classifier.resize_token_embeddings(len(tokenizer))

    def _need_tokenizer(self) -> Any:
        if self.tokenizer is None:
            raise ZooError("this LLMLingua-2 model has no tokenizer (built with pretrained=False?): load it with "
                           "zoo.load('llmlingua2') or zoo.load('llmlingua2', weights=DIR) where DIR holds the repo's "
                           "tokenizer.json and tokenizer_config.json")
        return self.tokenizer

    # ------------------------------------------------------------------ words
    def _pure(self, token: str) -> str:
        # the reference's token.lstrip("##") strips every leading "#" (a character set), as lstrip("#") does
        return token.lstrip("#") if self.family == "bert" else token.lstrip("▁")

    def _begins_word(self, token: str, force_tokens: Sequence[str], mapped: set[str]) -> bool:
        if self.family == "bert":
            if token.lstrip("#") in force_tokens or token.lstrip("#") in mapped:
                return True
            return not token.startswith("##")
        if token in string.punctuation or token in force_tokens or token in mapped:
            return True
        return token.startswith("▁")

    def _merge(self, tokens: list[str], probs: list[Any], force_tokens: Sequence[str], token_map: dict[str, str],
               force_reserve_digit: bool) -> tuple[list[str], list[list[Any]], list[list[Any]]]:
        """Tokens -> words, each word's token probabilities (force tokens / digits at 1.0) and the unforced ones."""
        mapped = set(token_map.values())
        words: list[str] = []
        word_probs: list[list[Any]] = []
        no_force: list[list[Any]] = []
        for token, prob in zip(tokens, probs):
            if token in self.special_tokens:
                continue
            if not words or self._begins_word(token, force_tokens, mapped):
                pure = self._pure(token)
                unforced = prob
                if pure in force_tokens or pure in mapped:
                    prob = 1.0
                for ori, new in token_map.items():
                    token = token.replace(new, ori)
                words.append(token)
                word_probs.append([1.0 if force_reserve_digit and re.search(r"\d", token) else prob])
                no_force.append([unforced])
            else:
                words[-1] += self._pure(token)
                word_probs[-1].append(1.0 if force_reserve_digit and re.search(r"\d", token) else prob)
                no_force[-1].append(unforced)
        return words, word_probs, no_force

    # ------------------------------------------------------------------ chunks and probabilities
    def _chunks(self, text: str, chunk_end_tokens: set[str]) -> list[str]:
        tok = self.tokenizer
        max_len = MAX_SEQ_LEN - 2
        tokens = tok.tokenize(text)
        n, st, out = len(tokens), 0, []
        while st < n:
            if st + max_len > n - 1:
                out.append(tok.convert_tokens_to_string(tokens[st:n]))
                break
            ed = st + max_len
            for j in range(0, ed - st):
                if tokens[ed - j] in chunk_end_tokens:
                    ed = ed - j
                    break
            out.append(tok.convert_tokens_to_string(tokens[st:ed + 1]))
            st = ed + 1
        return out

    @torch.no_grad()
    def _keep_probabilities(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The classifier's keep probability (label 1) of every id ``[B, T]``, float32 on the CPU."""
        device = next(self.classifier.parameters()).device
        logits = self.classifier(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
        return torch.softmax(logits.float(), dim=-1)[..., 1].cpu()

    def token_probabilities(self, chunks: Sequence[str], batch_size: int = 50) -> list[tuple[list[str], list[Any]]]:
        """For each chunk: its tokens (with the classifier's special tokens) and keep probabilities (float32)."""
        tok = self._need_tokenizer()
        # the reference's TokenClfDataset wraps every chunk in the strings [CLS] / [SEP] and pads with [PAD]
        # whatever the classifier (its model_name defaults to mBERT): XLM-R's tokenizer maps them to <unk>
        rows = [[_CLS, *tok.tokenize(chunk), _SEP][:MAX_SEQ_LEN] for chunk in chunks]
        pad_id = tok.convert_tokens_to_ids(_PAD)
        out: list[tuple[list[str], list[Any]]] = []
        for start in range(0, len(rows), batch_size):
            batch = rows[start:start + batch_size]
            width = max(len(r) for r in batch)
            ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.bool)
            for i, r in enumerate(batch):
                ids[i, :len(r)] = torch.tensor(tok.convert_tokens_to_ids(r))
                mask[i, :len(r)] = torch.tensor([t != _PAD for t in r])
            probs = self._keep_probabilities(ids, mask)
            for i in range(len(batch)):
                active_ids = torch.masked_select(ids[i], mask[i])
                tokens = tok.convert_ids_to_tokens(active_ids.tolist())
                out.append((tokens, list(torch.masked_select(probs[i], mask[i]).numpy())))
        return out

    def reduce(self, tokens: torch.Tensor, rate: float = 0.5, attention_mask: torch.Tensor | None = None) -> ReducedTokens:
        """Keep the ``rate`` fraction of a batch of the classifier's token ids ``[B, T]`` that it most
        wants kept (its keep probability), in their original order: LLMLingua-2's token-level rule
        on ids, without :meth:`compress`'s chunking, word merging and force tokens.

        ``sizes`` holds the keep probabilities of the kept tokens; padding (``attention_mask`` 0) is
        never kept and every row keeps ``round(rate * its length)`` tokens (at least one), padded
        on the right with index -1 and token id 0.
        """
        if not isinstance(tokens, torch.Tensor) or tokens.dim() != 2 or tokens.dtype.is_floating_point:
            raise InputError(f"llmlingua2 reduces integer token ids [B, T] of its classifier's tokenizer; got "
                             f"{getattr(tokens, 'dtype', type(tokens).__name__)} {tuple(getattr(tokens, 'shape', ()))} "
                             "(for text, call compress(text, rate=...))")
        if not 0 < float(rate) <= 1:
            raise ConfigError(f"rate is the fraction of tokens kept, in (0, 1]; got {rate}")
        mask = torch.ones_like(tokens, dtype=torch.bool) if attention_mask is None else attention_mask.bool()
        with torch.inference_mode():
            probs = self._keep_probabilities(tokens, mask).masked_fill(~mask.cpu(), -1.0)
        counts = [max(1, round(float(rate) * int(n))) for n in mask.sum(1)]
        width = max(counts)
        indices = torch.full((tokens.shape[0], width), -1, dtype=torch.long)
        kept = torch.zeros((tokens.shape[0], width), dtype=tokens.dtype)
        sizes = torch.zeros((tokens.shape[0], width))
        for i, n in enumerate(counts):
            top = probs[i].topk(n).indices.sort().values
            indices[i, :n], kept[i, :n], sizes[i, :n] = top, tokens[i].cpu()[top], probs[i, top]
        return ReducedTokens(kept, indices, sizes)

    def apply(self, model: Any, **schedule: Any) -> Any:
        """Not a model hook: LLMLingua-2 compresses the prompt before any model sees it."""
        raise ReducerError("llmlingua2 compresses prompts before the model: call compress(text, rate=...) and give "
                           "the result's .text to your model (or reduce(ids, rate=...) on the classifier's ids)")

    # ------------------------------------------------------------------ the method
    def compress(self, text: str | Sequence[str], rate: float = 0.5, target_tokens: int | None = None,
                 force_tokens: Sequence[str] = (), force_reserve_digit: bool = False, drop_consecutive: bool = False,
                 chunk_end_tokens: Sequence[str] = (".", "\n"), token_to_word: str = "mean",
                 token_counter: str | Callable[[str], int] = "gpt-3.5-turbo", batch_size: int = 50,
                 use_context_level_filter: bool = False, use_token_level_filter: bool = True,
                 target_context: int | None = None, context_level_rate: float = 1.0,
                 context_level_target_tokens: int | None = None, force_context_ids: Sequence[int] = ()) -> CompressedPrompt:
        """Drop the words of ``text`` (a string or a list of contexts) the classifier scores lowest.

        Args:
            rate: the fraction of tokens to keep (0.33 keeps about a third).
            target_tokens: keep about this many target-LM tokens (overrides ``rate``).
            force_tokens: tokens always kept (at most 100), e.g. ``["\\n", "?"]``.
            force_reserve_digit: keep every word with a digit.
            drop_consecutive: drop a force token that repeats the previous kept force token.
            chunk_end_tokens: where chunks of at most 510 classifier tokens may end.
            token_to_word: ``"mean"`` or ``"first"``: a word's probability from its tokens'.
            token_counter: ``"gpt-3.5-turbo"`` (tiktoken, the reference), ``"classifier"`` or a callable.
            batch_size: chunks per classifier call (the reference's ``max_batch_size``).
            use_context_level_filter: with several contexts, first drop whole contexts whose mean
                word probability is below the ``1 - context_level_rate`` percentile (the coarse
                stage of the reference); ``target_context``, ``context_level_rate``,
                ``context_level_target_tokens`` and ``force_context_ids`` set it as there (by
                default ``(rate + 1) / 2``, or twice ``target_tokens``).
            use_token_level_filter: False keeps every word of the kept contexts.
        """
        tok = self._need_tokenizer()
        contexts = self._check(text, rate, target_tokens, force_tokens, token_to_word, batch_size)
        count = self._counter(token_counter)
        token_map = {t: self.added_tokens[i] for i, t in enumerate(force_tokens) if len(tok.tokenize(t)) != 1}
        ends = list(chunk_end_tokens)
        ends += [token_map[c] for c in chunk_end_tokens if c in token_map]
        end_set = set(ends)
        merge = dict(force_tokens=force_tokens, token_map=token_map, force_reserve_digit=force_reserve_digit,
                     token_to_word=token_to_word, drop_consecutive=drop_consecutive, count=count, batch_size=batch_size)

        origin_tokens, chunked = 0, []
        for context in contexts:
            origin_tokens += count(context)
            for ori, new in token_map.items():
                context = context.replace(ori, new)
            chunked.append(self._chunks(context, end_set))

        if use_context_level_filter and len(chunked) > 1:
            return self._coarse_to_fine(chunked, origin_tokens, rate, target_tokens, use_token_level_filter, target_context,
                                        context_level_rate, context_level_target_tokens, force_context_ids, merge)
        if target_tokens is not None:
            rate = min(target_tokens / origin_tokens, 1.0) if origin_tokens else 1.0
        reduce_rate = max(0.0, 1.0 - rate) if use_token_level_filter else 0.0
        texts, words, probs, kept = self._token_level(chunked, reduce_rate, **merge)
        return self._result(texts, [w for ws in words for w in ws], None if probs is None else [p for ps in probs for p in ps],
                            [f for fs in kept for f in fs], origin_tokens, count, rate)

    def _coarse_to_fine(self, chunked: list[list[str]], origin_tokens: int, rate: float, target_tokens: int | None,
                        use_token_level_filter: bool, target_context: int | None, context_level_rate: float,
                        context_level_target_tokens: int | None, force_context_ids: Sequence[int], merge: dict) -> CompressedPrompt:
        """The reference's context-level filter, then the token level on the kept contexts."""
        count = merge["count"]
        if (target_context is None or target_context <= 0) and context_level_rate >= 1.0 and context_level_target_tokens is None:
            if target_tokens is None and rate < 1.0:
                context_level_rate = (rate + 1.0) / 2 if use_token_level_filter else rate
            if target_tokens is not None:
                context_level_target_tokens = target_tokens * 2 if use_token_level_filter else target_tokens
        if target_context is not None and target_context >= 0:
            context_level_rate = min(target_context / len(chunked), 1.0)
        if context_level_target_tokens is not None and context_level_target_tokens >= 0:
            context_level_rate = min(context_level_target_tokens / origin_tokens, 1.0)

        flat = [c for chunks in chunked for c in chunks]
        chunk_words, chunk_probs = [], []
        for tokens, probs in self.token_probabilities(flat, merge["batch_size"]):
            words, _, no_force = self._merge(tokens, probs, merge["force_tokens"], merge["token_map"], merge["force_reserve_digit"])
            chunk_probs.append(_word_probs(no_force, merge["token_to_word"]))
            chunk_words.append([w.lstrip("▁") for w in words] if self.family == "xlm-roberta" else words)
        context_probs, context_words, i = [], [], 0
        for chunks in chunked:
            probs = [p for k in range(i, i + len(chunks)) for p in chunk_probs[k]]
            context_words.append([w for k in range(i, i + len(chunks)) for w in chunk_words[k]])
            context_probs.append(sum(probs) / len(probs))
            i += len(chunks)
        threshold = np.percentile(context_probs, int(100 * (1 - context_level_rate)))
        keep_context = [p >= threshold or k in force_context_ids for k, p in enumerate(context_probs)]
        reserved = [c for c, keep in zip(chunked, keep_context) if keep]
        if target_tokens is not None:
            reserved_tokens = sum(count(c) for chunks in reserved for c in chunks)
            rate = min(target_tokens / reserved_tokens, 1.0)
        reduce_rate = max(0.0, 1.0 - rate) if use_token_level_filter else 0.0
        texts, words, probs, kept = self._token_level(reserved, reduce_rate, **merge)
        # every word of the prompt: the dropped contexts' with their (unforced) probabilities and label 0
        all_words, all_probs, all_kept, chunk_at, kept_at = [], [] if probs is not None else None, [], 0, 0
        for k, keep in enumerate(keep_context):
            if keep:
                all_words += words[kept_at]
                all_kept += kept[kept_at]
                if all_probs is not None:
                    all_probs += probs[kept_at]
                kept_at += 1
            else:
                all_words += context_words[k]
                all_kept += [False] * len(context_words[k])
                if all_probs is not None:
                    all_probs += [float(p) for c in range(chunk_at, chunk_at + len(chunked[k])) for p in chunk_probs[c]]
            chunk_at += len(chunked[k])
        return self._result(texts, all_words, all_probs, all_kept, origin_tokens, count, rate)

    def _token_level(self, chunked: list[list[str]], reduce_rate: float, force_tokens: Sequence[str], token_map: dict[str, str],
                     force_reserve_digit: bool, token_to_word: str, drop_consecutive: bool, count: Callable[[str], int],
                     batch_size: int) -> tuple[list[str], list[list[str]], list[list[float]] | None, list[list[bool]]]:
        """The reference's ``__compress``: per context, its compressed text, words, probabilities, kept flags."""
        tok = self.tokenizer
        if reduce_rate <= 0:
            texts, words = [], []
            for chunks in chunked:
                restored, ws = [], []
                for c in chunks:
                    for ori, new in token_map.items():
                        c = c.replace(new, ori)
                    ws.extend(_WORD_SPLIT.findall(c))
                    restored.append(c)
                texts.append("".join(restored))
                words.append(ws)
            return texts, words, None, [[True] * len(w) for w in words]

        flat = [c for chunks in chunked for c in chunks]
        chunk_texts, chunk_words, chunk_probs, chunk_kept = [], [], [], []
        for tokens, probs in self.token_probabilities(flat, batch_size):
            words, token_probs, _ = self._merge(tokens, probs, force_tokens, token_map, force_reserve_digit)
            word_probs = _word_probs(token_probs, token_to_word)
            returned_probs = list(word_probs)
            if drop_consecutive:
                threshold = np.percentile(word_probs, int(100 * reduce_rate))
                between, prev = False, None
                for i, (word, p) in enumerate(zip(words, word_probs)):
                    if word in force_tokens:
                        if between:
                            between = False
                        elif word == prev:
                            word_probs[i] = 0.0
                        prev = word
                    else:
                        between |= p > threshold
            weighted = [p for word, p in zip(words, word_probs) for _ in range(count(word))]
            threshold = np.percentile(weighted, int(100 * reduce_rate + 1))
            keep_words, kept = [], []
            for word, p in zip(words, word_probs):
                if p > threshold or (threshold == 1.0 and p == threshold):
                    if drop_consecutive and word in force_tokens and keep_words and keep_words[-1] == word:
                        kept.append(False)
                    else:
                        keep_words.append(word)
                        kept.append(True)
                else:
                    kept.append(False)
            chunk_texts.append(tok.convert_tokens_to_string(keep_words))
            chunk_words.append([w.lstrip("▁") for w in words] if self.family == "xlm-roberta" else words)
            chunk_probs.append([float(p) for p in returned_probs])
            chunk_kept.append(kept)
        texts, words_by, probs_by, kept_by, i = [], [], [], [], 0
        for chunks in chunked:
            span = range(i, i + len(chunks))
            texts.append("".join(chunk_texts[k] for k in span))
            words_by.append([w for k in span for w in chunk_words[k]])
            probs_by.append([p for k in span for p in chunk_probs[k]])
            kept_by.append([f for k in span for f in chunk_kept[k]])
            i += len(chunks)
        return texts, words_by, probs_by, kept_by

    @staticmethod
    def _result(texts: list[str], words: list[str], probs: list[float] | None, kept: list[bool], origin_tokens: int,
                count: Callable[[str], int], rate: float) -> CompressedPrompt:
        compressed = sum(count(t) for t in texts)
        return CompressedPrompt("\n\n".join(texts), texts, words, probs, kept, origin_tokens, compressed, rate)

    def _counter(self, token_counter: str | Callable[[str], int]) -> Callable[[str], int]:
        if callable(token_counter):
            return token_counter
        if token_counter == "classifier":
            return lambda text: len(self.tokenizer(text, add_special_tokens=True).input_ids)
        if token_counter == "gpt-3.5-turbo":
            return gpt35_token_counter()
        raise ConfigError(f"token_counter must be 'gpt-3.5-turbo', 'classifier' or a callable str -> int; got {token_counter!r}")

    @staticmethod
    def _check(text: Any, rate: Any, target_tokens: Any, force_tokens: Any, token_to_word: str, batch_size: int) -> list[str]:
        contexts = [text] if isinstance(text, str) else list(text) if isinstance(text, (list, tuple)) else None
        if contexts is None or not all(isinstance(c, str) for c in contexts):
            raise InputTypeError(f"text must be a string or a list of strings; got {type(text).__name__}")
        if not contexts or not any(c.strip() for c in contexts):
            raise InputError("nothing to compress: the prompt is empty")
        if target_tokens is None and not (isinstance(rate, (int, float)) and 0 < rate <= 1):
            raise ConfigError(f"rate is the fraction of tokens to keep, in (0, 1]; got {rate!r}")
        if target_tokens is not None and (not isinstance(target_tokens, int) or target_tokens < 1):
            raise ConfigError(f"target_tokens must be a positive int; got {target_tokens!r}")
        if isinstance(force_tokens, str) or len(force_tokens) > MAX_FORCE_TOKENS:
            raise ConfigError(f"force_tokens must be a list of at most {MAX_FORCE_TOKENS} strings (e.g. ['\\n', '?'])")
        if token_to_word not in ("mean", "first"):
            raise ConfigError(f"token_to_word must be 'mean' or 'first'; got {token_to_word!r}")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1; got {batch_size}")
        return copy.copy(contexts)
