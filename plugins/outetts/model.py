"""OuteTTS-0.1-350M generator: text -> WavTokenizer-75 codes -> 24 kHz waveform.

Example (random weights and a toy tokenizer, see tests):
    >>> out = model.generate("Hello world", seed=0)   # doctest: +SKIP
    >>> out.media.shape, out.meta["sample_rate"]       # doctest: +SKIP
    (torch.Size([1, 1, 36480]), 24000)
"""

from __future__ import annotations

from typing import Any, Optional, Sequence, Union

import torch

from zoo.errors import InputError
from zoo.model import ZooModel

from .config import OuteTTSConfig
from .lm import LlamaLM

__all__ = ["OuteTTS"]


class OuteTTS(ZooModel, LlamaLM):
    """The LM plus the v0.1 prompt format; ``text_tokenizer`` is attached by the builder
    (from the card's ``tokenizer.json``) or passed to :meth:`generate`."""

    def __init__(self, cfg: OuteTTSConfig):
        super().__init__(cfg)
        self.text_tokenizer = None

    @torch.no_grad()
    def generate(
        self,
        text: Union[str, Sequence[str]],
        *,
        speaker: Optional[dict] = None,
        temperature: Optional[float] = None,
        repetition_penalty: Optional[float] = None,
        repetition_window: Optional[int] = None,
        top_k: Optional[int] = None,
        top_p: Optional[float] = None,
        min_p: Optional[float] = None,
        max_length: Optional[int] = None,
        max_new_tokens: Optional[int] = None,
        generator: Optional[torch.Generator] = None,
        seed: Optional[int] = None,
        decode: bool = True,
        text_tokenizer: Any = None,
        tokenizer: Any = None,
        progress: Any = None,
    ):
        """Text (or a list of texts, left-padded into one batch) -> :class:`~zoo.sampling.Generation`:
        ``tokens`` holds the WavTokenizer codes per item (``lengths`` valid), ``media`` the
        waveforms ``[B, 1, samples]`` (24 kHz) unless ``decode=False``.

        Sampler defaults are outetts v0.1's (temperature 0.1, repetition penalty 1.1 over the
        whole context, HF's top-k 50); ``max_length`` counts prompt + generated tokens (4096).
        ``repetition_window=64`` gives the windowed penalty later OuteTTS versions use.
        """
        from zoo.interfaces import Tokens
        from zoo.sampling import Generation, SamplerSettings, generate_ar
        from zoo.sampling.conditioning import make_generator

        c = self.cfg
        tok = text_tokenizer or self.text_tokenizer
        if tok is None:
            raise InputError("no text tokenizer: load the model with its tokenizer.json (zoo.load('outetts')) or pass text_tokenizer=")
        texts = [text] if isinstance(text, str) else list(text)
        if not texts or not all(isinstance(t, str) and t.strip() for t in texts):
            raise InputError("text must be a non-empty string (or a list of them)")
        prompts = [tok.encode_prompt(t, speaker) for t in texts]
        p = max(len(x) for x in prompts)
        device = self.head_weight.device
        ids = torch.zeros(len(prompts), p, dtype=torch.long)
        valid = torch.zeros(len(prompts), p, dtype=torch.bool)
        for i, x in enumerate(prompts):  # left padding
            ids[i, p - len(x):] = torch.tensor(x)
            valid[i, p - len(x):] = True
        limit = c.max_length if max_length is None else int(max_length)
        new = (limit - p) if max_new_tokens is None else int(max_new_tokens)
        if new < 1:
            raise InputError(f"the prompt has {p} tokens; max_length={limit} leaves no room to generate")
        settings = SamplerSettings(
            temperature=c.temperature if temperature is None else float(temperature),
            top_k=c.top_k if top_k is None else int(top_k),
            top_p=c.top_p if top_p is None else float(top_p),
            min_p=c.min_p if min_p is None else float(min_p),
            repetition_penalty=c.repetition_penalty if repetition_penalty is None else float(repetition_penalty),
            repetition_window=c.repetition_window if repetition_window is None else int(repetition_window),
        )
        out = generate_ar(
            self.step, ids.to(device), new, self.new_cache(len(prompts), p + new), generator=make_generator(generator, seed, device),
            sampler=settings, prompt_valid=None if bool(valid.all()) else valid.to(device), eos_id=c.eos_token_id,
            pad_id=c.eos_token_id, progress=progress,
        )
        codes = [tok.codes(out.ids[i, : int(out.lengths[i])].tolist(), c.num_audio_codes) for i in range(len(texts))]
        n = max(1, max(len(x) for x in codes))
        code_ids = torch.zeros(len(codes), n, dtype=torch.long)
        for i, x in enumerate(codes):
            code_ids[i, : len(x)] = torch.tensor(x, dtype=torch.long)
        tokens = Tokens(ids=code_ids, codebook_size=c.num_audio_codes, tokenizer=c.tokenizer,
                        lengths=torch.tensor([len(x) for x in codes]), meta={"sample_rate": c.sample_rate})
        meta = {"sample_rate": c.sample_rate, "lm_tokens": out.ids, "lm_lengths": out.lengths, **settings.__dict__}
        media = self.decode(tokens, tokenizer) if decode else None
        return Generation(tokens=tokens, media=media, meta=meta)

    def decode(self, tokens, tokenizer: Any = None) -> torch.Tensor:
        """Codes -> waveforms ``[B, 1, samples]`` with the paired WavTokenizer (items decoded one
        by one: WavTokenizer's output depends on padding)."""
        if tokenizer is None:
            import zoo

            tokenizer = zoo.load(self.cfg.tokenizer, device=self.head_weight.device)
        if int(tokens.lengths.min()) == 0:
            raise InputError("the model generated no audio codes for some item (try another seed or a higher max_length)")
        waves = [tokenizer.decode(t) for t in tokens.to_list()]
        n = max(w.shape[-1] for w in waves)
        out = waves[0].new_zeros(len(waves), 1, n)
        for i, w in enumerate(waves):
            out[i, 0, : w.shape[-1]] = w.reshape(-1)
        return out
