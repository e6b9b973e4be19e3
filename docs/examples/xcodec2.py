import torch
import zoo
from zoo.media.audio import load_audio, save_audio

codec = zoo.load("xcodec2")                          # HKUSTAudio/xcodec2-hf (Xcodec2Model); weights CC-BY-NC-4.0
wave, sr = load_audio("speech.wav")                  # any rate: zoo resamples to 16 kHz
tokens = codec.encode(wave, sr)                      # zoo.Tokens: ids [1, 1, T], 50/s, 65 536 FSQ codes
save_audio("xcodec2.wav", codec.decode(tokens)[0], codec.sample_rate)   # [1, 1, T * 320] at 16 kHz
ids = torch.randint(0, codec.codebook_size, (1, 1, 100))  # or speech tokens from Llasa
audio = codec.decode(ids)
