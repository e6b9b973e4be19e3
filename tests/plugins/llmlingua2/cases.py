"""LLMLingua-2 parity cases: prompt, ``compress_prompt_llmlingua2`` keyword arguments (the
reference's names) and which tiny classifier. Outputs of llmlingua 0.2.2 are recorded in
tests/fixtures/llmlingua2/reference.json."""

from __future__ import annotations

from .tiny import prompt

# name: kind of classifier, prompt (n sentences, seed) or list of prompts, reference kwargs
CASES = {
    "rate_033": dict(text=(12, 1), kwargs=dict(rate=0.33)),
    "rate_05_long_chunked": dict(text=(260, 2), kwargs=dict(rate=0.5)),
    "target_tokens": dict(text=(20, 3), kwargs=dict(target_token=60)),
    "force_tokens": dict(text=(15, 4), kwargs=dict(rate=0.3, force_tokens=["\n", "?", "budget", "council-vote"])),
    "force_digits_drop_consecutive": dict(text=(18, 5), kwargs=dict(rate=0.4, force_tokens=[".", "\n"], force_reserve_digit=True,
                                                                  drop_consecutive=True)),
    "first_token_mode": dict(text=(10, 6), kwargs=dict(rate=0.5, token_to_word="first")),
    "two_contexts": dict(text=[(6, 7), (9, 8)], kwargs=dict(rate=0.4)),
    "no_reduction": dict(text=(5, 9), kwargs=dict(rate=1.0)),
    "context_filter_rate": dict(text=[(5, 20), (8, 21), (3, 22), (7, 23)], kwargs=dict(rate=0.4, use_context_level_filter=True)),
    "context_filter_target": dict(text=[(6, 24), (4, 25), (9, 26)], kwargs=dict(target_token=70, use_context_level_filter=True,
                                                                                force_context_ids=[1])),
    "context_filter_only": dict(text=[(4, 27), (5, 28), (6, 29)], kwargs=dict(use_context_level_filter=True, use_token_level_filter=False,
                                                                              target_context=2)),
    "bert_rate_033": dict(kind="bert", text=(14, 10), kwargs=dict(rate=0.33)),
    "bert_force_tokens": dict(kind="bert", text=(14, 11), kwargs=dict(rate=0.4, force_tokens=["?", "meeting", "council-vote"])),
}


def case_text(name: str) -> str | list[str]:
    spec = CASES[name]["text"]
    if isinstance(spec, list):
        return [prompt(n, seed) for n, seed in spec]
    text = prompt(*spec)
    if "council-vote" in str(CASES[name]["kwargs"].get("force_tokens", [])):
        text = text.replace("council vote", "council-vote") + " The council-vote is 12 to 3."
    return text
