"""``zoo reconstruct`` for audio tokenizers: where the outputs go, and writing them.

* ``--out FILE.wav`` (one input): the reconstruction in FILE.wav and its spectrogram picture
  (input above, reconstruction below) in ``FILE.png``; with ``--codebooks 1,2,4`` one
  ``FILE_q<N>.wav`` + ``FILE_q<N>.png`` per count.
* ``--out DIR/`` (a folder: existing, ending in ``/``, or a name without a suffix):
  any number of inputs; ``DIR/<input stem>.wav`` + ``DIR/<input stem>.png`` each (``_q<N>``
  before the suffix with ``--codebooks``).

Example:
    >>> [str(p) for p in audio_outputs(["a/x.wav", "b/y.flac"], "out/")]
    ['out/x.wav', 'out/y.wav']
    >>> [str(p) for p in audio_outputs(["a/x.wav"], "rec.wav")]
    ['rec.wav']
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Sequence

from zoo.errors import ZooError

__all__ = ["is_folder_output", "audio_outputs", "write_reconstructions"]

def is_folder_output(out: str | Path) -> bool:
    """``--out`` names a folder: it exists as one, ends with a separator, or has no suffix at all
    (``out.txt`` is a file name with a wrong suffix, which the caller reports)."""
    s = str(out)
    return s.endswith(("/", os.sep)) or Path(s).is_dir() or not Path(s).suffix


def audio_outputs(inputs: Sequence[str | Path], out: str | Path) -> list[Path]:
    """The reconstruction file of each input (see the module docstring); a folder is made when needed.

    Raises ZooError when several inputs go to one file or two inputs share a stem."""
    if not is_folder_output(out):
        if len(inputs) != 1:
            raise ZooError(f"{len(inputs)} audio inputs but --out {out} is one file; give a folder (e.g. --out out/) "
                           "to write one reconstruction per input")
        return [Path(out)]
    folder = Path(out)
    stems = [Path(p).stem for p in inputs]
    dupes = sorted({s for s in stems if stems.count(s) > 1})
    if dupes:
        raise ZooError(f"inputs {dupes} share a file name; their reconstructions would overwrite each other in {folder}")
    if folder.exists() and not folder.is_dir():
        raise ZooError(f"--out {folder} exists and is not a folder")
    return [folder / f"{s}.wav" for s in stems]


def write_reconstructions(model: Any, items: Sequence[tuple[Any, int]], outputs: Sequence[Path],
                          codebook_counts: Sequence[int] | None, decode_kwargs: Callable[[], dict],
                          echo: Callable[[str], None]) -> None:
    """Encode each ``(waveform, sample_rate)``, decode (per codebook count), write the wav and the
    input-vs-output spectrogram PNG next to it."""
    import torch

    from zoo.media.audio import prepare_audio, save_audio
    from zoo.media.audio_metrics import spectrogram_image

    sr_out = model.sample_rate
    for (wave, sr), path in zip(items, outputs):
        path.parent.mkdir(parents=True, exist_ok=True)
        with torch.inference_mode():
            tokens = model.encode(wave, sr)
            levels = getattr(tokens, "num_codebooks", 1)
            bad = [q for q in codebook_counts or [] if q > levels]
            if bad:
                raise ZooError(f"--codebooks {bad} out of range: {model.name} makes {levels} codebook level(s) (use 1..{levels})")
            jobs = [(path, tokens)] if not codebook_counts else [
                (path.with_name(f"{path.stem}_q{q}{path.suffix}"), tokens.codebooks(q)) for q in codebook_counts]
            reference = prepare_audio(wave, sr, sr_out)  # the input as the model hears it (mono, its rate)
            for target, tok in jobs:  # each decode draws its noise from a generator seeded --seed
                audio = model.decode(tok, **decode_kwargs())
                lengths = tokens.meta.get("num_samples")  # decoders emit whole hops: trim to the input's length
                if lengths:
                    audio = audio[..., : int(lengths[0])]
                if audio.dim() == 3:  # codecs that return [B, C, L]: the one item, channels kept
                    audio = audio[0]
                save_audio(target, audio, sr_out)
                picture = target.with_suffix(".png")
                mono = audio.float().reshape(-1, audio.shape[-1]).mean(0)
                spectrogram_image(reference.reshape(-1), mono, sr_out).save(picture)
                levels_note = f", {tok.num_codebooks} of {levels} codebook levels" if codebook_counts else ""
                echo(f"wrote {target} ({tokens.max_length} tokens{levels_note}, {audio.shape[-1] / sr_out:.2f} s) "
                     f"and {picture.name} (spectrogram: input above, reconstruction below)")
