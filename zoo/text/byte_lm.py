"""Exact byte-level probabilities from a token-level language model (Phan et al., "Exact
Byte-Level Probabilities from Tokenized Language Models", ICLR 2025), written from the paper.

A token-level LM gives probabilities to token sequences; text is bytes. The probability that
the generated text *starts with* the bytes ``x`` is the sum over its **cover encodings**: the
valid token sequences ``t_1..t_k`` whose first ``k-1`` tokens spell a proper prefix of ``x``
and whose last token reaches past (or to) its end. A sequence is *valid* when the tokenizer
itself would produce it (``encode(decode(t)) == t``); the paper's assumption is that the LM
puts no mass on invalid ones. Valid prefixes of valid sequences are canonical encodings, so
every cover is ``encode(x[:i]) + [t]`` with ``t``'s bytes starting with ``x[i:]`` -- at most
one left part per split point ``i`` within the longest token of the end, each scored once::

    P(x...) = sum_i sum_{t: bytes(t) starts with x[i:], valid} P(encode(x[:i])) P(t | encode(x[:i]))

Next-byte probabilities follow from the covers (those that run past ``x`` vote for their next
byte; the canonical encoding of ``x`` spreads its next-token distribution over the tokens'
first bytes, and its EOS over "end of text"). That removes the tokenization bias of
prompt boundaries ("http:" never being followed by "//" in a model that only saw "://" as one
token) and puts LMs with different tokenizers on one alphabet (:class:`ByteEnsemble`).

Conventions: a distribution over 257 outcomes, bytes 0..255 and ``END`` (256, the model's EOS).
Byte-level tokenizers may split a character over several tokens; a sequence that ends inside
a character is valid when some completion of the character encodes through it
(:meth:`ByteLM.valid_as`). Text a tokenizer cannot spell byte for byte (it lower-cases, normalises Unicode,
collapses spaces: ``TextTokenizer.lossless`` is False) has no valid encoding and probability 0.

Example:
    >>> lm = ByteLM(uniform_lm(4), fixed_tokenizer(["a", "b", "ab"]))
    >>> round(float(lm.next_byte_logprobs("").exp()[ord("a")]), 4)   # 'a' and 'ab' both start with a
    0.6667
"""

from __future__ import annotations

import bisect
import functools
import math
from collections import OrderedDict
from functools import cached_property
from typing import Any, Callable, Sequence

import torch

from zoo.errors import InputError, InputTypeError

__all__ = ["ByteLM", "ByteEnsemble", "END", "generate_bytes", "uniform_lm", "fixed_tokenizer"]

#: Index of "end of text" (the LM's EOS) in a next-byte distribution.
END = 256


def _as_bytes(x: str | bytes) -> bytes:
    if isinstance(x, str):
        return x.encode("utf-8")
    if isinstance(x, (bytes, bytearray)):
        return bytes(x)
    raise InputTypeError(f"expected text (str) or bytes, got {type(x).__name__}")


class ByteLM:
    """A token-level causal LM seen as a distribution over bytes.

    Args:
        model: a transformers causal LM (or any module/callable taking ``input_ids``
            ``[B, L]`` and ``attention_mask`` and returning logits ``[B, L, V]`` or an object
            with ``.logits``).
        tokenizer: a :class:`~zoo.text.tokenizer.TextTokenizer`, a ``tokenizers.Tokenizer``, a
            SentencePiece processor, or a path to a ``tokenizer.json`` / ``.model``.
        bos_id: the id every sequence starts from (default: the tokenizer's BOS, else the
            model config's ``bos_token_id``); ``eos_id`` likewise (``END`` gets its mass).
        check_validity: mask next tokens that would make the encoding non-canonical (exact;
            the full prefix re-encoded with every candidate, in one batched tokenizer call). ``False``
            is the paper's fast mode.
        cache_size: LM results kept by token prefix (generation reuses most of them).
        kv_cache: score a new token sequence from the LM's key/value cache of the last one scored
            (transformers ``cache`` / ``past_key_values``, cropped to the shared prefix), so that a generation
            step runs the LM only on the tokens its prefix's encoding changed; ``False`` runs every
            new sequence from its start. Used when the model's ``forward`` takes one.
    """

    def __init__(self, model: Any, tokenizer: Any, *, bos_id: int | None = None, eos_id: int | None = None,
                 check_validity: bool = True, cache_size: int = 4096, device: str | torch.device | None = None,
                 kv_cache: bool = True):
        from zoo.text.tokenizer import TextTokenizer

        if isinstance(tokenizer, (str, bytes)) or hasattr(tokenizer, "__fspath__"):
            tokenizer = TextTokenizer.from_file(tokenizer)
        elif not isinstance(tokenizer, TextTokenizer):
            tokenizer = TextTokenizer(tokenizer)
        self.tok = tokenizer
        self.model = model
        config = getattr(model, "config", None)
        self.bos_id = bos_id if bos_id is not None else (tokenizer.bos_id if tokenizer.bos_id is not None else getattr(config, "bos_token_id", None))
        self.eos_id = eos_id if eos_id is not None else (tokenizer.eos_id if tokenizer.eos_id is not None else getattr(config, "eos_token_id", None))
        if self.bos_id is None:
            raise InputError("ByteLM needs a start token to score the first token: pass bos_id= (the tokenizer and the "
                             "model config name none)")
        self.check_validity = check_validity
        self.device = torch.device(device) if device is not None else _module_device(model)
        self.table = list(tokenizer.token_bytes)
        self.prefix = self._implicit_prefix()
        order = sorted((b, i) for i, b in enumerate(self.table) if b)
        self._sorted = [b for b, _ in order]
        self._sorted_ids = [i for _, i in order]
        self.max_token_bytes = max(len(b) for b in self._sorted)
        first = [b[0] if b else -1 for b in self.table]
        self._first_byte = torch.tensor(first, dtype=torch.long)
        self._cache: OrderedDict[tuple[int, ...], tuple[float, torch.Tensor]] = OrderedDict()
        self._cache_size = cache_size
        self._canon: dict[bytes, tuple[int, ...] | None] = {}
        self._partial: dict[tuple[bytes, tuple[int, ...]], bool] = {}
        self._candidates = [t for t, b in enumerate(self.table) if b]  # ids with bytes (no specials)
        self._spelled = [b or b"\0\0" for b in self.table]  # specials spell nothing a text can hold
        self._ends_ascii = [bool(b) and b[-1] < 0x80 for b in self.table]  # data + such a token ends a character
        self._completions: dict[int, list[tuple[bytes, str]]] = {}
        self._starts_inside = [bool(b) and 0x80 <= b[0] < 0xC0 for b in self.table]  # a continuation byte first
        self._ends_inside = [bool(b) and bool(_incomplete_tail(b)) for b in self.table]  # ends inside a character
        cache_arg = _cache_argument(model)
        self._no_cache = {"use_cache": False} if cache_arg else {}  # batched scoring builds no cache
        self._kv = _KVTrunk(model, cache_arg) if cache_arg and kv_cache else None
        self._last_covers: tuple[bytes, list[tuple[tuple[int, ...], bytes]], torch.Tensor | None] | None = None
        self.lm_calls = 0
        self.lm_tokens = 0  # token positions run through the LM (a measure of the KV cache's savings)

    # ------------------------------------------------------------------ tokenizer side
    def _implicit_prefix(self) -> bytes:
        """Bytes the tokenizer puts before every text (SentencePiece's dummy-prefix space)."""
        singles = [b for b in self.table if b and len(b) == 1 and b.isalnum()]
        probe = b"a" if b"a" in singles or not singles else singles[0]
        spelled = b"".join(self.table[i] or b"" for i in self.tok.canonical_ids(probe.decode()))
        if not spelled.endswith(probe):
            raise InputError(f"cannot line up {self.tok.name}'s tokens with bytes ({probe!r} encodes to {spelled!r})")
        prefix = spelled[: -len(probe)]
        lead = self.tok.canonical_ids(prefix.decode("utf-8", "replace") + probe.decode()) if prefix else []
        # the piece that spells the prefix alone, as the tokenizer uses it before a text that starts with a space
        self._prefix_token = (lead[0],) if lead and self.table[lead[0]] == prefix else None
        return prefix

    def canonical(self, data: bytes) -> tuple[int, ...] | None:
        """The tokenizer's encoding of the bytes ``data`` (implicit prefix included), or ``None``
        when no text encodes to exactly these bytes (a cut UTF-8 character, a missing prefix)."""
        if self.prefix and data == self.prefix:  # the token that spells the implicit prefix alone starts texts with a space
            return self._prefix_token
        if data in self._canon:
            return self._canon[data]
        out: tuple[int, ...] | None = None
        if data.startswith(self.prefix) and (data or not self.prefix):
            try:
                text = data[len(self.prefix):].decode("utf-8")
            except UnicodeDecodeError:
                text = None
            if text is not None:
                ids = tuple(self.tok.canonical_ids(text)) if text else ()
                if b"".join(map(self._spelled.__getitem__, ids)) == data:
                    out = ids
        if len(self._canon) > 200_000:
            self._canon.clear()
        self._canon[data] = out
        return out

    def valid_as(self, data: bytes, ids: tuple[int, ...]) -> bool:
        """Whether ``ids`` (spelling ``data``) is a prefix of the tokenizer's encoding of some text
        that starts with ``data``. Complete UTF-8: ``canonical(data) == ids``. Ending inside a
        character (a byte-level tokenizer may split one over several tokens): true when some
        completion of that character (continuation bytes 0x80..0xBF, then 0x80) encodes to a
        sequence that starts with ``ids`` -- the token boundaries within the character are the
        tokenizer's own."""
        tail = _incomplete_tail(data)
        if not tail:
            return self.canonical(data) == ids
        key = (data, ids)
        if key in self._partial:
            return self._partial[key]
        ok = False
        for b in range(0x80, 0xC0):
            full = self.canonical(_completion(data, b))
            if full is not None and full[: len(ids)] == ids:
                ok = True
                break
        self._partial[key] = ok
        return ok

    def _left(self, data: bytes, i: int) -> tuple[int, ...] | None:
        """The valid encoding of ``data[:i]`` that can continue into ``data[i:]``: the canonical
        one at a character boundary; inside a character, the first tokens of the encoding of
        ``data`` up to the end of that character, when a token boundary falls at ``i``."""
        if i == 0:
            return ()
        head = data[:i]
        if not _incomplete_tail(head):
            return self.canonical(head)
        j = i + _utf8_length(_incomplete_tail(head)[0]) - len(_incomplete_tail(head))
        # the character's end: from data, or (cut off at the end of data) completed with 0x80 bytes
        ids = self.canonical(data[:j] if j <= len(data) else data + b"\x80" * (j - len(data)))
        if ids is None:
            return None
        pos = 0
        for k, t in enumerate(ids):
            if pos == i:
                return ids[:k]
            pos += len(self.table[t] or b"")
        return None

    def spell(self, ids: Sequence[int]) -> bytes:
        """The bytes a token sequence stands for (special tokens stand for none)."""
        return b"".join(self.table[i] or b"" for i in ids)

    def is_valid(self, ids: Sequence[int]) -> bool:
        """Whether the tokenizer would produce ``ids`` for the bytes they spell."""
        return all(self.table[i] is not None for i in ids) and self.canonical(self.spell(ids)) == tuple(ids)

    def starting_with(self, head: bytes) -> list[int]:
        """Ids of the tokens whose bytes start with ``head``."""
        lo = bisect.bisect_left(self._sorted, head)
        out = []
        for k in range(lo, len(self._sorted)):
            if not self._sorted[k].startswith(head):
                break
            out.append(self._sorted_ids[k])
        return out

    # ------------------------------------------------------------------ LM side
    @torch.no_grad()
    def _score(self, seqs: list[tuple[int, ...]]) -> list[tuple[float, torch.Tensor]]:
        """``(log P(seq), log P(next token | seq))`` of each sequence (cached by prefix)."""
        todo = [s for s in dict.fromkeys(seqs) if s not in self._cache]
        if len(todo) == 1 and self._kv is not None:  # one new sequence (a generation step): extend the cached one
            s = todo[0]
            total, nxt, ran = self._kv.score((self.bos_id, *s), self.device)
            self.lm_calls += 1
            self.lm_tokens += ran
            self._cache[s] = (total, nxt)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        elif todo:
            width = 1 + max(len(s) for s in todo)
            ids = torch.zeros(len(todo), width, dtype=torch.long)
            mask = torch.zeros(len(todo), width, dtype=torch.long)
            for b, s in enumerate(todo):
                ids[b, : 1 + len(s)] = torch.tensor((self.bos_id, *s))
                mask[b, : 1 + len(s)] = 1
            out = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device), **self._no_cache)
            logits = out.logits if hasattr(out, "logits") else out
            logp = torch.log_softmax(logits.double(), dim=-1).cpu()
            self.lm_calls += 1
            self.lm_tokens += int(mask.sum())
            for b, s in enumerate(todo):
                n = len(s)
                total = float(logp[b, torch.arange(n), torch.tensor(s, dtype=torch.long)].sum()) if n else 0.0
                self._cache[s] = (total, logp[b, n].clone())
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        for s in seqs:
            self._cache.move_to_end(s)
        return [self._cache[s] for s in seqs]

    # ------------------------------------------------------------------ covers
    def covers(self, x: str | bytes) -> list[tuple[tuple[int, ...], bytes]]:
        """The cover encodings of ``x``: ``(ids, rest)`` where ``ids`` spells ``x`` (after the
        tokenizer's implicit prefix) followed by ``rest`` and only its last token reaches the end."""
        data = self.prefix + _as_bytes(x)
        return self._covers(data)[0]

    def _covers(self, data: bytes) -> tuple[list[tuple[tuple[int, ...], bytes]], torch.Tensor | None]:
        """Covers of ``data`` (prefix included) and, when known, their log-probabilities.

        One byte past the last call (generation), they are updated as the official code does:
        the last call's covers whose rest starts with the new byte, minus that byte, then the
        covers whose last token starts at the new byte. That equals the search from scratch, in
        the same order, except after a text that ends inside a UTF-8 character (a split there
        depends on the character's end): that case is searched again."""
        n = len(data)
        last = self._last_covers
        if last is not None and data == last[0]:
            return last[1], last[2]
        if n == 0:
            self._last_covers = (data, [((), b"")], None)
            return self._last_covers[1], None
        if last is not None and n == len(last[0]) + 1 and data.startswith(last[0]) and not _incomplete_tail(last[0]):
            b = data[-1]
            keep = [k for k, (_, rest) in enumerate(last[1]) if rest and rest[0] == b]
            out = [(last[1][k][0], last[1][k][1][1:]) for k in keep]
            fresh = self._covers_at(data, n - 1)
            lp = None
            if last[2] is not None:
                lp = torch.cat([last[2][keep], self._cover_logprobs(fresh)]) if fresh else last[2][keep]
            out += fresh
        else:
            out = [c for i in range(max(0, n - self.max_token_bytes), n) for c in self._covers_at(data, i)]
            lp = None
        self._last_covers = (data, out, lp)
        return out, lp

    def _covers_at(self, data: bytes, i: int) -> list[tuple[tuple[int, ...], bytes]]:
        """The covers of ``data`` whose last token starts at byte ``i``."""
        left = self._left(data, i)
        if left is None:
            return []
        out = []
        for t in self.starting_with(data[i:]):
            ids = (*left, t)
            if self.valid_as(data[:i] + self.table[t], ids):
                out.append((ids, self.table[t][len(data) - i:]))
        return out

    def _cover_logprobs(self, covers: list[tuple[tuple[int, ...], bytes]]) -> torch.Tensor:
        lefts = [ids[:-1] for ids, _ in covers]
        scored = self._score(lefts)
        return torch.tensor([lp + float(nxt[ids[-1]]) for (ids, _), (lp, nxt) in zip(covers, scored)], dtype=torch.float64)

    # ------------------------------------------------------------------ public API
    def byte_logprob(self, text: str | bytes, *, end: bool = False) -> float:
        """``log P(text...)``: the natural-log probability that the LM's output starts with
        these bytes (``end=True``: that it is exactly these bytes, then EOS). ``-inf`` when no
        valid encoding spells them."""
        data = _as_bytes(text)
        if end:
            ids = self.canonical(self.prefix + data) if data else ()
            if ids is None or self.eos_id is None:
                return -math.inf
            lp, nxt = self._score([ids])[0]
            return lp + float(nxt[self.eos_id])
        if not data:
            return 0.0  # every output starts with the empty text
        covers = self.covers(data)
        if not covers:
            return -math.inf
        return float(torch.logsumexp(self._cover_logprobs(covers), 0))

    def bits_per_byte(self, text: str | bytes) -> float:
        """``-log2 P(text...) / len(bytes)``, without tokenization bias."""
        data = _as_bytes(text)
        if not data:
            raise InputError("bits_per_byte of an empty text is undefined")
        return -self.byte_logprob(data) / (len(data) * math.log(2))

    def next_byte_logprobs(self, prefix: str | bytes = b"", *, return_mass: bool = False):
        """``log P(next byte | prefix)`` as a ``[257]`` float64 tensor: bytes 0..255, then
        :data:`END`. ``return_mass=True`` also returns ``(unnormalised total, P(prefix))``: equal
        when the LM puts no mass on invalid encodings (their ratio is what the normalisation hides)."""
        data = _as_bytes(prefix)
        covers, cover_lp = self._covers(self.prefix + data)
        if not covers:
            raise InputError(f"no valid token sequence spells {data[-20:]!r}: it has probability 0 under this tokenizer "
                             "(characters its vocabulary lacks, or a tokenizer that normalises text: see TextTokenizer.lossless)")
        if cover_lp is None:
            cover_lp = self._cover_logprobs(covers) if covers != [((), b"")] else torch.zeros(1, dtype=torch.float64)
            if self._last_covers is not None and self._last_covers[1] is covers:
                self._last_covers = (self._last_covers[0], covers, cover_lp)
        p_prefix = float(torch.logsumexp(cover_lp, 0)) if data else 0.0  # P(empty prefix) = 1
        mass = torch.zeros(257, dtype=torch.float64)
        if not data and self.prefix and self.eos_id is not None:  # EOS first: the empty text, which has no implicit prefix
            mass[END] += float(torch.exp(self._score([()])[0][1][self.eos_id]))
        for (ids, rest), lp in zip(covers, cover_lp.tolist()):
            if rest:
                mass[rest[0]] += math.exp(lp - p_prefix)
                continue
            # the canonical encoding of the prefix: its next token decides the next byte
            lp_c, nxt = self._score([ids])[0]
            probs = torch.exp(nxt + (lp_c - p_prefix))
            probs = probs[: len(self.table)] if probs.shape[0] >= len(self.table) else torch.nn.functional.pad(probs, (0, len(self.table) - probs.shape[0]))
            keep = self._first_byte[: probs.shape[0]] >= 0
            if self.check_validity:
                keep = keep & self._valid_next(ids, probs.shape[0])
            mass.index_add_(0, self._first_byte[keep], probs[keep])
            if self.eos_id is not None and self.eos_id < nxt.shape[0]:
                mass[END] += float(torch.exp(nxt[self.eos_id] + (lp_c - p_prefix)))
        total = float(mass.sum())
        out = torch.log(mass / total)
        return (out, (total, 1.0)) if return_mass else out

    def _valid_next(self, ids: tuple[int, ...], size: int) -> torch.Tensor:
        """Mask of the tokens ``t`` for which ``ids + (t,)`` is valid: the uncached encodings in
        one batched tokenizer call, then, for tokens that leave a character unfinished,
        :meth:`valid_as`'s completions in rounds (the first in the same call, then one per
        completion rank, for the texts still undecided). After whole characters, see
        :meth:`_valid_next_after`; inside one, only tokens that start with a continuation byte are
        asked. Equal to asking :meth:`valid_as` token by token."""
        data = self.spell(ids)
        table, canon = self.table, self._canon
        cand = self._candidates if size >= len(table) else [t for t in self._candidates if t < size]
        head = self._text_of(data)
        if head is not None:
            return self._valid_next_after(data, head, ids, cand, size)
        if _incomplete_tail(data):  # only a continuation byte can follow: any other token never decodes (invalid)
            cont = self._starts_inside
            cand = [t for t in cand if cont[t]]
        fulls = [data + table[t] for t in cand]
        partial = {k for k, t in enumerate(cand) if not self._ends_ascii[t] and _incomplete_tail(fulls[k])}
        if head is None:
            keys, texts = self._to_encode([full for full in fulls if full not in canon])
        else:  # the prefix decodes: each text is it + the token's own text (no per-candidate decoding)
            pieces, keys, texts = self._token_text, [], []
            for t, full in zip(cand, fulls):
                if pieces[t] is not None and full not in canon:
                    keys.append(full)
                    texts.append(head + pieces[t])
        if partial:  # the first round of completions rides in the same tokenizer call
            self._decide_partial([(fulls[k], (*ids, cand[k])) for k in sorted(partial)], keys, texts)
        else:
            self._encode_into_canonical(keys, texts)
        keep = [False] * size
        for k, (t, full) in enumerate(zip(cand, fulls)):
            if k in partial:
                keep[t] = self._partial[(full, (*ids, t))]
            else:
                got = canon.get(full, _MISSING)
                keep[t] = self.valid_as(full, (*ids, t)) if got is _MISSING else got == (*ids, t)
        return torch.tensor(keep, dtype=torch.bool)

    def _decide_partial(self, keys: list[tuple[bytes, tuple[int, ...]]], more_keys: Sequence[bytes] = (),
                        more_texts: Sequence[str] = ()) -> None:
        """:meth:`valid_as` for texts that end inside a character, batched in rounds: round ``r``
        tries each undecided text's ``r``-th completion byte (in order), one tokenizer call per
        round; the first round also encodes ``more_texts`` (for :meth:`canonical`, keyed by
        ``more_keys``). Any order gives the same answers: a text is valid when *some* completion
        keeps its tokens. A completion that cannot decode (the text before the character does
        not, or no character starts so) is never tried; :meth:`canonical` would refuse it."""
        todo = []
        for key in dict.fromkeys(keys):
            if key in self._partial:
                continue
            full = key[0]
            tail = _incomplete_tail(full)
            if not _decodes(full[len(self.prefix): len(full) - len(tail)]) or not _completable(tail):
                self._partial[key] = False
            else:
                todo.append((key, _completable_sorted(tail)))
        r = 0
        while todo or more_texts:
            round_ = [(key, _completion(key[0], ok[r])) for key, ok in todo]
            ks, ts = self._to_encode([text for _, text in round_])
            self._encode_into_canonical([*more_keys, *ks], [*more_texts, *ts])
            more_keys, more_texts = (), ()
            for key, text in round_:
                enc = self.canonical(text)
                if enc is not None and enc[: len(key[1])] == key[1]:
                    self._partial[key] = True
            r += 1
            for key, ok in todo:
                if key not in self._partial and r == len(ok):  # every completion tried: none keeps the tokens
                    self._partial[key] = False
            todo = [(key, ok) for key, ok in todo if key not in self._partial]

    def _valid_next_after(self, data: bytes, head: str, ids: tuple[int, ...], cand: list[int], size: int) -> torch.Tensor:
        """:meth:`_valid_next` after whole characters (``data`` spells the text ``head``): each
        token that decodes alone is valid when ``head`` + its text encodes to exactly ``ids`` + it
        (those ids spell ``data`` + the token: :meth:`canonical`'s test); one that ends inside a
        character goes to :meth:`_decide_partial_after`, whose first round shares the tokenizer
        call; any other (stray continuation bytes) cannot decode after ``data``: invalid."""
        pieces, inside = self._token_text, self._ends_inside
        whole = [t for t in cand if pieces[t] is not None]
        partial = [t for t in cand if inside[t]]
        texts = [head + pieces[t] for t in whole]
        encoded = self._decide_partial_after(data, head, ids, partial, texts)
        target = list(ids)
        keep = torch.zeros(size, dtype=torch.bool)
        ok = [t for t, enc in zip(whole, encoded) if enc and enc[-1] == t and enc[:-1] == target]
        ok += [t for t in partial if self._partial[(data + self.table[t], (*ids, t))]]
        if ok:
            keep[torch.tensor(ok, dtype=torch.long)] = True
        return keep

    def _decide_partial_after(self, data: bytes, head: str, ids: tuple[int, ...], tokens: list[int],
                              more_texts: list[str]) -> list[list[int]]:
        """:meth:`_decide_partial` for ``data + token`` (``data`` whole characters spelling ``head``,
        each token ending inside a character), from per-token completions: the text of each
        is ``head`` + the completed token's text (data + bytes that do not decode alone never
        decode: UTF-8 synchronises at a character's start). The first round also encodes
        ``more_texts``, whose encodings it returns."""
        todo = []
        for t in tokens:
            key = (data + self.table[t], (*ids, t))
            if key in self._partial:
                continue
            done = self._token_completions(t)
            if not done:
                self._partial[key] = False
            else:
                todo.append((key, done))
        canon, spelled, backend, r, first = self._canon, self._spelled.__getitem__, self.tok._backend(), 0, None
        while todo or first is None:
            round_ = [(key, data + done[r][0]) for key, done in todo]
            ks, ts = [], []
            for (_, done), (_, full) in zip(todo, round_):
                if full not in canon:
                    ks.append(full)
                    ts.append(head + done[r][1])
            texts = ts if first is not None else [*more_texts, *ts]
            encoded = backend.encode(texts, False, False)[0] if texts else []
            if first is None:
                first, encoded = encoded[: len(more_texts)], encoded[len(more_texts):]
            if len(canon) + len(ks) > 200_000:
                canon.clear()
            for full, enc in zip(ks, encoded):
                canon[full] = tuple(enc) if b"".join(map(spelled, enc)) == full else None
            r += 1
            left = []
            for (key, done), (_, full) in zip(todo, round_):
                enc = canon[full] if full in canon else self.canonical(full)  # (a full cache was cleared)
                if enc is not None and enc[: len(key[1])] == key[1]:
                    self._partial[key] = True
                elif r == len(done):  # every completion tried: none keeps the tokens
                    self._partial[key] = False
                else:
                    left.append((key, done))
            todo = left
        return first

    def _token_completions(self, t: int) -> list[tuple[bytes, str]]:
        """A token that ends inside a character, completed each way :func:`_completable` allows:
        ``(bytes, text)``; none when its bytes before that character do not decode."""
        got = self._completions.get(t)
        if got is None:
            b = self.table[t]
            tail = _incomplete_tail(b)
            got = []
            if _decodes(b[: len(b) - len(tail)]):
                for c in _completable_sorted(tail):
                    full = _completion(b, c)
                    got.append((full, full.decode("utf-8")))
            self._completions[t] = got
        return got

    def _text_of(self, data: bytes) -> str | None:
        """The text ``data`` spells after the implicit prefix, or ``None`` (no prefix, cut UTF-8)."""
        if not data.startswith(self.prefix):
            return None
        try:
            return data[len(self.prefix):].decode("utf-8")
        except UnicodeDecodeError:
            return None

    @cached_property
    def _token_text(self) -> list[str | None]:
        """Each token's bytes as text where they decode alone (``None`` for specials and pieces
        of a character)."""
        out: list[str | None] = []
        for b in self.table:
            try:
                out.append(b.decode("utf-8") if b else None)
            except UnicodeDecodeError:
                out.append(None)
        return out

    def _fill_canonical(self, keys: list[bytes]) -> None:
        """Encode (one batched tokenizer call) the byte strings among ``keys`` that
        :meth:`canonical` would send to the tokenizer, and cache the results as it does."""
        self._encode_into_canonical(*self._to_encode(keys))

    def _to_encode(self, keys: list[bytes]) -> tuple[list[bytes], list[str]]:
        """The byte strings among ``keys`` that :meth:`canonical` would send to the tokenizer
        (not cached, the implicit prefix, then text that decodes), with those texts."""
        texts, todo = [], []
        for data in dict.fromkeys(keys):
            if data in self._canon or data == self.prefix or not data.startswith(self.prefix):
                continue
            try:
                text = data[len(self.prefix):].decode("utf-8")
            except UnicodeDecodeError:
                continue
            if text:
                texts.append(text)
                todo.append(data)
        return todo, texts

    def _encode_into_canonical(self, keys: list[bytes], texts: list[str]) -> None:
        """Encode ``texts`` (each the text of the byte string in ``keys`` after the implicit prefix,
        non-empty) in one tokenizer call; cache each encoding when it spells its key exactly."""
        if not texts:
            return
        if len(self._canon) + len(texts) > 200_000:
            self._canon.clear()
        encoded, _ = self.tok._backend().encode(texts, False, False)
        spelled, canon = self._spelled.__getitem__, self._canon
        for data, enc in zip(keys, encoded):
            canon[data] = tuple(enc) if b"".join(map(spelled, enc)) == data else None

    def generate(self, prompt: str | bytes = b"", max_new_bytes: int = 64, **sampling: Any) -> bytes:
        """Continue ``prompt`` byte by byte (:func:`generate_bytes`); returns the new bytes."""
        return generate_bytes(self.next_byte_logprobs, prompt, max_new_bytes, **sampling)


_MISSING = object()


def _completion(data: bytes, b: int) -> bytes:
    """``data`` (ending inside a UTF-8 character) with that character finished: the byte ``b``,
    then ``0x80`` bytes.

    Example:
        >>> _completion(b"d\\xe2", 0x82)
        b'd\\xe2\\x82\\x80'
    """
    tail = _incomplete_tail(data)
    return data + bytes([b]) + b"\x80" * (_utf8_length(tail[0]) - len(tail) - 1)


@functools.lru_cache(maxsize=None)
def _completable(tail: bytes) -> frozenset[int]:
    """The bytes ``b`` after which the unfinished character ``tail`` can decode (finished with
    ``0x80`` bytes, as :func:`_completion` does): none for leads no UTF-8 character starts with.

    Example:
        >>> sorted(_completable(b"\\xe0"))[:2], len(_completable(b"\\xc0"))
        ([160, 161], 0)
    """
    need = _utf8_length(tail[0]) - len(tail) - 1
    return frozenset(b for b in range(0x80, 0xC0) if _decodes(tail + bytes([b]) + b"\x80" * need))


@functools.lru_cache(maxsize=None)
def _completable_sorted(tail: bytes) -> tuple[int, ...]:
    """:func:`_completable` in increasing order."""
    return tuple(sorted(_completable(tail)))


def _decodes(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _cache_argument(model: Any) -> str | None:
    """The keyword a transformers causal LM's ``forward`` takes its key/value cache by
    (``cache`` in transformers 5, ``past_key_values`` before), or ``None``."""
    import inspect

    forward = getattr(model, "forward", None)
    if forward is None or getattr(model, "config", None) is None:
        return None
    try:
        params = inspect.signature(forward).parameters
    except (TypeError, ValueError):
        return None
    return next((name for name in ("cache", "past_key_values") if name in params), None)


class _KVTrunk:
    """The key/value cache of the last token sequence scored, with the log-probability of each
    of its prefixes: a new sequence is scored by cropping the cache to the prefix both share and
    running the LM on the rest (at least the last token, whose logits give the next-token
    distribution)."""

    def __init__(self, model: Any, cache_arg: str = "cache"):
        self.model, self.cache_arg = model, cache_arg
        self.ids: tuple[int, ...] = ()
        self.cache: Any = None
        self.prefix_lp: list[float] = []  # prefix_lp[k]: log P(ids[1:k + 1] | ids[0]), k < len(ids)
        self.last: torch.Tensor | None = None  # log P(next | ids)

    def score(self, seq: tuple[int, ...], device: torch.device) -> tuple[float, torch.Tensor, int]:
        """``(log P(seq[1:] | seq[0]), log P(next token | seq), tokens run)``."""
        if self.cache is not None and seq == self.ids:
            return self.prefix_lp[-1], self.last, 0
        shared = 0
        for a, b in zip(self.ids, seq):
            if a != b:
                break
            shared += 1
        if self.cache is None or shared == 0:
            start, base = 0, [0.0]
        elif shared == len(self.ids):  # seq extends the cached sequence: its last logits score seq[shared]
            start, base = shared, [*self.prefix_lp, self.prefix_lp[-1] + float(self.last[seq[shared]])]
        else:  # they part (or seq is shorter): rerun the last shared token, whose logits score seq[shared]
            start, base = shared - 1, self.prefix_lp[:shared]
        if start and len(self.ids) > start:
            try:
                self.cache.crop(start - len(self.ids))  # negative: drop that many positions (any transformers version)
            except (ValueError, NotImplementedError, AttributeError, TypeError):  # a cache that cannot be cut back
                start, base = 0, [0.0]
        if not start:
            from transformers import DynamicCache

            self.cache = DynamicCache(config=getattr(self.model, "config", None))
        new = seq[start:]
        out = self.model(input_ids=torch.tensor([new], device=device),
                         attention_mask=torch.ones(1, len(seq), dtype=torch.long, device=device),
                         use_cache=True, **{self.cache_arg: self.cache})
        self.cache = out[self.cache_arg] if self.cache_arg in out else out.past_key_values
        logp = torch.log_softmax(out.logits[0].double(), dim=-1).cpu()
        lp = base
        for j in range(len(new) - 1):  # logits at seq position start + j score the token after it
            lp.append(lp[-1] + float(logp[j, new[j + 1]]))
        self.ids, self.prefix_lp, self.last = seq, lp, logp[-1].clone()
        return lp[-1], self.last, len(new)


def _utf8_length(lead: int) -> int:
    """Bytes of the UTF-8 character that starts with byte ``lead`` (1 for a stray byte)."""
    return 2 if 0xC0 <= lead < 0xE0 else 3 if 0xE0 <= lead < 0xF0 else 4 if 0xF0 <= lead < 0xF8 else 1


def _incomplete_tail(data: bytes) -> bytes:
    """The bytes of an unfinished UTF-8 character at the end of ``data`` (empty if none).

    Example:
        >>> _incomplete_tail("dé".encode()[:-1]), _incomplete_tail(b"ab")
        (b'\\xc3', b'')
    """
    for k in range(1, min(4, len(data)) + 1):
        lead = data[-k]
        if lead < 0x80:
            return b""
        if lead >= 0xC0:
            return data[-k:] if _utf8_length(lead) > k else b""
    return b""


def _module_device(model: Any) -> torch.device:
    try:
        return next(model.parameters()).device
    except (AttributeError, StopIteration, TypeError):
        return torch.device("cpu")


class ByteEnsemble:
    """LMs with different tokenizers combined at the byte level: ``mode="mixture"``
    (``sum_i w_i p_i``) or ``"product"`` (``prod_i p_i^{w_i}``, renormalised).

    Example:
        >>> a = ByteLM(uniform_lm(3), fixed_tokenizer(["a", "b"]))
        >>> b = ByteLM(uniform_lm(4), fixed_tokenizer(["a", "b", "ab"]))
        >>> ens = ByteEnsemble([a, b])
        >>> round(float(ens.next_byte_logprobs("").exp()[ord("a")]), 4)   # (1/2 + 2/3) / 2
        0.5833
    """

    def __init__(self, models: Sequence[ByteLM], weights: Sequence[float] | None = None, mode: str = "mixture"):
        if len(models) < 1:
            raise InputError("ByteEnsemble needs at least one ByteLM")
        w = list(weights) if weights is not None else [1.0 / len(models)] * len(models)
        if len(w) != len(models) or any(x < 0 for x in w) or sum(w) <= 0:
            raise InputError(f"weights must be {len(models)} non-negative numbers with a positive sum, got {w}")
        if mode not in ("mixture", "product"):
            raise InputError(f"mode must be 'mixture' or 'product', got {mode!r}")
        self.models, self.mode = list(models), mode
        self.weights = torch.tensor(w, dtype=torch.float64) / sum(w)

    def next_byte_logprobs(self, prefix: str | bytes = b"") -> torch.Tensor:
        parts = torch.stack([m.next_byte_logprobs(prefix) for m in self.models])
        if self.mode == "mixture":
            return torch.logsumexp(parts + self.weights.log()[:, None], 0)
        joint = (parts * self.weights[:, None]).sum(0)
        return joint - torch.logsumexp(joint, 0)

    def byte_logprob(self, text: str | bytes) -> float:
        """Chain rule over the ensemble's next-byte distributions (prefix probability)."""
        data = _as_bytes(text)
        return float(sum(self.next_byte_logprobs(data[:i])[data[i]] for i in range(len(data))))

    def generate(self, prompt: str | bytes = b"", max_new_bytes: int = 64, **sampling: Any) -> bytes:
        return generate_bytes(self.next_byte_logprobs, prompt, max_new_bytes, **sampling)


def generate_bytes(next_logprobs: Callable[[bytes], torch.Tensor], prompt: str | bytes = b"", max_new_bytes: int = 64, *,
                   temperature: float = 0.0, top_p: float = 1.0, generator: torch.Generator | None = None,
                   stop_at_end: bool = True) -> bytes:
    """Byte-by-byte decoding: greedy at ``temperature=0`` (the default), else sampling with
    ``temperature`` / ``top_p`` from ``generator`` (:func:`zoo.sampling.logits.own_generator`:
    never the global RNG). Stops at :data:`END` when ``stop_at_end``."""
    from zoo.sampling.logits import own_generator, top_p as top_p_filter

    data = _as_bytes(prompt)
    if max_new_bytes < 0:
        raise InputError(f"max_new_bytes must be >= 0, got {max_new_bytes}")
    gen = own_generator(generator) if temperature > 0 else None
    new = bytearray()
    for _ in range(max_new_bytes):
        logp = next_logprobs(data + bytes(new))
        if temperature <= 0:
            choice = int(torch.argmax(logp))
        else:
            logits = (logp / temperature).float()
            if top_p < 1.0:
                logits = top_p_filter(logits[None], top_p)[0]
            choice = int(torch.multinomial(torch.softmax(logits, -1), 1, generator=gen))
        if choice == END:
            if stop_at_end:
                break
            continue
        new.append(choice)
    return bytes(new)


# ---------------------------------------------------------------------- tiny stand-ins for examples


class _UniformLM(torch.nn.Module):
    def __init__(self, vocab: int):
        super().__init__()
        self.vocab = vocab

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return torch.zeros(*input_ids.shape, self.vocab)


def uniform_lm(vocab: int) -> torch.nn.Module:
    """An LM that gives every next token the same probability (for examples and tests)."""
    return _UniformLM(vocab)


def fixed_tokenizer(tokens: Sequence[str], bos: str = "<s>") -> Any:
    """A BPE ``tokenizers.Tokenizer`` over exactly ``tokens`` (merges in order of length), plus
    ``bos`` as a special token at the end (for examples and tests)."""
    from tokenizers import Tokenizer, models

    vocab = {t: i for i, t in enumerate(tokens)}
    merges = []
    for t in sorted(tokens, key=len):
        if len(t) > 1:
            for k in range(1, len(t)):
                a, b = t[:k], t[k:]
                if a in vocab and b in vocab:
                    merges.append((a, b))
                    break
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.add_special_tokens([bos])
    return tok
