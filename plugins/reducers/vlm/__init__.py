"""Post-encoder reducers inside transformers vision-language models (LLaVA, LLaVA-NeXT, Qwen2-VL).

:mod:`.adapter` hooks the model, :mod:`.policy` picks each image's tokens, :mod:`.sequence`
rebuilds the prompt, :mod:`.signals` reads the vision tower's attention. transformers is never
imported here: the adapter only touches the model it is given.
"""
