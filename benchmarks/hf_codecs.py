"""The transformers codecs: zoo's overhead over a direct transformers call, same module, same audio.

    python benchmarks/hf_codecs.py [--cards encodec.24khz dac.44khz ...] [--seconds 10] [--threads 1]

Each card is built at its published architecture with random weights (``pretrained=False``; the
hub is not needed, and the cost of a call does not depend on the weights' values). For one clip
of ``--seconds`` of seeded audio at the codec's own rate:

* direct: what a transformers user writes -- the family's feature extractor, then
  ``model.encode`` (all codebook levels) / ``model.decode`` of those codes;
* zoo: ``codec.encode(wave, sample_rate)`` -> Tokens and ``codec.decode(tokens)`` on the same
  module (input checks, Tokens, per-item batching and trimming on top of the same calls).

Timings are CPU seconds of this process (``time.process_time``), median of ``--repeats`` after a
warm-up, zoo and direct interleaved; overhead = zoo / direct - 1 (target: under 5%). The codes
of both paths are compared (they must be equal). X-Codec 2's direct call uses zoo's
``Xcodec2Features`` (transformers' ``Xcodec2FeatureExtractor`` needs torchaudio, which does not
load with this torch; zoo's computes the same features in plain torch), then ``model.encode``.
"""

from __future__ import annotations

import argparse

import torch
from _audio_codec import median_cpu
from _record import add_results_option, start

CARDS = ["encodec.24khz", "encodec.48khz", "dac.16khz", "dac.44khz", "mimi.24khz", "xcodec.hubert_librispeech", "xcodec2.16khz"]


def direct_calls(codec, wav: torch.Tensor):
    """(encode, decode) closures of the plain transformers calls, and the codes they give."""
    spec, module = codec.spec, codec.codec
    fe = codec.feature_extractor()
    arr = (wav[0] if wav.shape[0] == 1 else wav).numpy()
    q = codec.num_codebooks

    def encode():
        inputs = fe(arr, sampling_rate=codec.sample_rate, return_tensors="pt")
        with torch.inference_mode():
            if spec.family == "encodec":
                return module.encode(inputs["input_values"], inputs["padding_mask"], bandwidth=max(module.config.target_bandwidths))
            if spec.family == "dac":
                return module.encode(inputs["input_values"]).audio_codes
            if spec.family == "mimi":
                return module.encode(inputs["input_values"]).audio_codes
            if spec.family == "xcodec2":
                return module.encode(**inputs).audio_codes
            return module.encode(inputs["input_values"], bandwidth=max(module.config.target_bandwidths)).audio_codes

    out = encode()

    def decode():
        with torch.inference_mode():
            if spec.family == "encodec":
                return module.decode(out.audio_codes, out.audio_scales, last_frame_pad_length=out.last_frame_pad_length).audio_values
            if spec.family == "dac":
                return module.decode(audio_codes=out).audio_values
            if spec.family == "xcodec2":
                return module.decode(audio_codes=out).audio_values
            return module.decode(out).audio_values

    codes = out.audio_codes.permute(1, 2, 0, 3).flatten(2) if spec.family == "encodec" else out
    return encode, decode, codes[:, :q]


def measure(card: str, args) -> list[dict]:
    """Rows (encode, decode) of one card: direct and zoo CPU seconds, overhead, codes equal."""
    import zoo

    torch.manual_seed(0)
    codec = zoo.load(card, pretrained=False)
    g = torch.Generator().manual_seed(7)
    wav = (torch.randn(codec.channels, int(args.seconds * codec.sample_rate), generator=g) * 0.2).clamp(-1, 1)
    encode, decode, codes = direct_calls(codec, wav)
    tokens = codec.encode(wav, codec.sample_rate)
    equal = bool(torch.equal(tokens.ids, codes.long()))
    ops = (("encode", {"direct": encode, "zoo": lambda: codec.encode(wav, codec.sample_rate)}),
           ("decode", {"direct": decode, "zoo": lambda: codec.decode(tokens)}))
    rows = []
    for op, fns in ops:
        t = median_cpu(fns, args.repeats)
        over = t["zoo"] / t["direct"] - 1
        rows.append({"model": card, "op": op, "audio_s": args.seconds, "unit": "CPU s", "direct_s": t["direct"],
                     "zoo_s": t["zoo"], "overhead": over, "codes_equal": equal, "params": codec.num_parameters()})
        print(f"{card:28} {op:6} direct {t['direct']:7.3f} s  zoo {t['zoo']:7.3f} s  overhead {over * 100:+6.2f}%"
              f"  codes equal: {equal}", flush=True)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cards", nargs="+", default=CARDS)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    add_results_option(p)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    run = start("hf_codecs", title="transformers codecs: zoo overhead over direct calls", kind="tokenizer",
                threads=args.threads, settings=vars(args), reference="transformers (direct calls)", results=args.results)
    rows = [row for card in args.cards for row in measure(card, args)]
    run.write(rows, notes=["random weights at each card's published architecture; the audio is at the codec's own rate",
                           "overhead = zoo CPU s / direct CPU s - 1 (target < 5%); direct = feature extractor + model.encode / decode",
                           "X-Codec 2: direct = zoo's Xcodec2Features (transformers' extractor needs torchaudio) + model.encode"])


if __name__ == "__main__":
    main()
