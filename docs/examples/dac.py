import zoo
from zoo.media.audio import load_audio, save_audio

codec = zoo.load("dac")                              # descript/dac_44khz through transformers' DacModel
wave, sr = load_audio("speech.wav")                  # [channels, samples], any rate: zoo resamples
tokens = codec.encode(wave, sr)                      # zoo.Tokens: ids [1, 9, T] (9 residual levels, 86 frames/s)
for q in (1, 2, 4, 9):                               # the bitrate knob: decode the first q levels
    audio = codec.decode(tokens.codebooks(q))        # [1, 1, T * 512] at 44.1 kHz
    save_audio(f"dac_{q}.wav", audio[0], codec.sample_rate)
