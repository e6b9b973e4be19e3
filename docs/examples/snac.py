import torch

import zoo
from zoo.media.audio import load_audio, save_audio

codec = zoo.load("snac")                             # snac.24khz: config.json + pytorch_model.bin, strict load
wave, sr = load_audio("speech.wav")                  # [channels, samples], any rate: zoo resamples to 24 kHz
tokens = codec.encode(wave, sr)                      # zoo.MultiRateTokens: levels [1, T], [1, 2T], [1, 4T] (12/23/47 Hz)
g = torch.Generator().manual_seed(0)                 # the decoder's noise blocks draw from this generator
audio = codec.decode(tokens, generator=g)            # [1, 1, 4T * 512] at 24 kHz
save_audio("snac.wav", audio[0], codec.sample_rate)
coarse = codec.decode(tokens.codebooks(1), generator=torch.Generator().manual_seed(0))  # the 12 Hz level alone
