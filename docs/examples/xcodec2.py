import torch
import zoo

codec = zoo.load("xcodec2")                          # HKUSTAudio/xcodec2-hf (Xcodec2Model); weights CC-BY-NC-4.0
ids = torch.randint(0, codec.codebook_size, (1, 1, 100))  # e.g. speech tokens from Llasa: [B, 1, T], 65 536 codes
audio = codec.decode(ids)                            # [1, 1, T * 320] at 16 kHz
# codec.encode(wave, sr) needs transformers' Xcodec2FeatureExtractor, which needs torchaudio (kaldi fbank)
