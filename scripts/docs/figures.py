#!/usr/bin/env python3
"""Make the documentation's pictures (the gallery page shows whichever exist).

    python scripts/docs/figures.py reconstruction    # docs/assets/figures/reconstruction_grid.png
    python scripts/docs/figures.py audio             # docs/assets/figures/audio_spectrogram.png
    python scripts/docs/figures.py reducers          # docs/assets/figures/reducers.svg
    python scripts/docs/figures.py all

* ``reconstruction``: the embedded demo tokenizer (``flextok.demo_128``, weights inside the zoo
  package) encodes the example images in ``examples/images`` and decodes the first
  1, 2, 4, ... N tokens of each, through zoo's own command: ``zoo reconstruct``.
* ``audio``: the embedded audio demo codec (``wavtokenizer.demo_tiny``) reconstructs the first
  clip in ``examples/audio`` with ``zoo reconstruct``; its spectrogram picture (input above,
  reconstruction below) is the figure.
* ``reducers``: ``benchmarks/reducers.py`` measures speed and fidelity of the token reducers
  on this machine, ``scripts/plot_reducers.py`` draws them.

Nothing here is drawn by hand; re-running a command regenerates its picture. The site builds
(``--strict``) with or without the pictures: a missing one shows the command that makes it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIGURES = ROOT / "docs" / "assets" / "figures"
DEMO = "flextok.demo_128"
AUDIO_DEMO = "wavtokenizer.demo_tiny"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}


def _token_counts(n: int) -> list[int]:
    """1, 2, 4, ... up to and including ``n``.

    Example:
        >>> _token_counts(32), _token_counts(24)
        ([1, 2, 4, 8, 16, 32], [1, 2, 4, 8, 16, 24])
    """
    counts, k = [], 1
    while k < n:
        counts.append(k)
        k *= 2
    return counts + [n]


def reconstruction(out: Path = FIGURES / "reconstruction_grid.png", images: Path = ROOT / "examples" / "images",
                   model: str = DEMO, max_images: int = 5, seed: int = 0) -> Path:
    """Write the coarse-to-fine grid of ``model`` on the example photographs."""
    import zoo

    if model not in zoo.list_models():
        raise SystemExit(f"{model} is not registered here (zoo list); the demo weights ship with zoo_plugins.flextok")
    card = zoo.get_card(model)
    n = int(str(card.tokens.length).split("-")[-1]) if card.tokens else 32
    inputs = sorted(p for p in images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:max_images] if images.is_dir() else []
    if not inputs:
        raise SystemExit(f"no example images (*.png, *.jpg) in {images}")
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "zoo.cli", "reconstruct", *map(str, inputs), "--model", model,
           "--tokens", ",".join(map(str, _token_counts(n))), "--seed", str(seed), "--out", str(out)]
    print("+", " ".join(cmd[2:]))
    subprocess.run(cmd, check=True, cwd=ROOT)
    return out


def audio(out: Path = FIGURES / "audio_spectrogram.png", clips: Path = ROOT / "examples" / "audio",
          model: str = AUDIO_DEMO) -> Path:
    """Write the input-vs-reconstruction spectrogram of ``model`` on the first example clip."""
    import shutil

    import zoo

    if model not in zoo.list_models():
        raise SystemExit(f"{model} is not registered here (zoo list); the demo weights ship with zoo_plugins.wavtokenizer")
    inputs = sorted(clips.glob("*.wav")) if clips.is_dir() else []
    if not inputs:
        raise SystemExit(f"no example clips (*.wav) in {clips}")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "zoo.cli", "reconstruct", str(inputs[0]), "--model", model, "--out", f"{tmp}/"]
        print("+", " ".join(cmd[2:]))
        subprocess.run(cmd, check=True, cwd=ROOT)
        shutil.copyfile(Path(tmp) / f"{inputs[0].stem}.png", out)
    return out


def reducers(out: Path = FIGURES / "reducers.svg", extra: list[str] | None = None) -> Path:
    """Benchmark the token reducers here and plot speed-up against feature cosine."""
    bench, plot = ROOT / "benchmarks" / "reducers.py", ROOT / "scripts" / "plot_reducers.py"
    for path in (bench, plot):
        if not path.is_file():
            raise SystemExit(f"{path.relative_to(ROOT)} is missing: it comes with the reducers plugin")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        rows = Path(tmp) / "rows.json"
        cmd = [sys.executable, str(bench), "--json", str(rows), *(extra or ["--batch", "8", "--reps", "3"])]
        print("+", " ".join(cmd[1:]))
        subprocess.run(cmd, check=True, cwd=ROOT)
        subprocess.run([sys.executable, str(plot), str(rows), str(out)], check=True, cwd=ROOT)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("figure", choices=["reconstruction", "audio", "reducers", "all"])
    ap.add_argument("--images", type=Path, default=ROOT / "examples" / "images", help="input photographs (reconstruction)")
    ap.add_argument("--model", default=DEMO, help="tokenizer for the reconstruction grid")
    ap.add_argument("--out", type=Path, default=None, help="output file (default: under docs/assets/figures/)")
    ap.add_argument("--bench-args", default=None, help="arguments for benchmarks/reducers.py, e.g. '--batch 32 --reps 5'")
    args = ap.parse_args(argv)
    if args.figure in ("reconstruction", "all"):
        out = args.out if args.out and args.figure != "all" else FIGURES / "reconstruction_grid.png"
        print("wrote", reconstruction(out=out, images=args.images, model=args.model))
    if args.figure in ("audio", "all"):
        out = args.out if args.out and args.figure != "all" else FIGURES / "audio_spectrogram.png"
        print("wrote", audio(out=out))
    if args.figure in ("reducers", "all"):
        out = args.out if args.out and args.figure != "all" else FIGURES / "reducers.svg"
        print("wrote", reducers(out=out, extra=args.bench_args.split() if args.bench_args else None))


if __name__ == "__main__":
    main()
