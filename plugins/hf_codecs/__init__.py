"""Audio codecs that ``transformers`` already implements, behind zoo's tokenizer interface.

EnCodec, DAC, Mimi, X-Codec and X-Codec 2 run on transformers' own public classes
(``EncodecModel``, ``DacModel``, ``MimiModel``, ``XcodecModel``, ``Xcodec2Model``, built from
the repo's ``config.json`` read as data; never ``trust_remote_code``). zoo adds the interface:
``encode(wav, sample_rate) -> Tokens`` with residual codebooks ``[B, Q, T]``, resampling and
channel handling (``zoo.media.audio``), batches of unequal lengths, chunking of long audio and
``decode(tokens)``. Needs the ``zoo[transformers]`` extra; importing this module imports neither
torch nor transformers.

    >>> import zoo                                                   # doctest: +SKIP
    >>> codec = zoo.load("encodec.24khz")                            # doctest: +SKIP
    >>> tokens = codec.encode("speech.flac")     # Tokens ids [1, 32, T] at 75 Hz  # doctest: +SKIP
    >>> wav = codec.decode(tokens.codebooks(8))  # 6 kbps                          # doctest: +SKIP
"""

from __future__ import annotations

from zoo.hookspecs import hookimpl

FAMILIES = ("encodec", "dac", "mimi", "xcodec", "xcodec2")


@hookimpl
def register_builders(register):
    from .builder import HFCodecBuilder  # noqa: PLC0415 - imports nothing heavy either

    for family in FAMILIES:
        register(HFCodecBuilder(family))
