import zoo
from zoo.media.audio import load_audio, save_audio

codec = zoo.load("speechtokenizer")                  # fnlp/SpeechTokenizer (hubert_avg), strict load
wave, sr = load_audio("speech.wav")                  # [channels, samples], any rate: zoo resamples to 16 kHz
tokens = codec.encode(wave, sr)                      # zoo.Tokens: ids [1, 8, T] at 50 Hz; level 0 is semantic
for q in (1, 2, 4, 8):                               # the bitrate knob: decode the first q levels
    audio = codec.decode(tokens.codebooks(q))        # [1, 1, T * 320] at 16 kHz
    save_audio(f"speechtokenizer_{q}.wav", audio[0], codec.sample_rate)
