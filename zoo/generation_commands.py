"""``zoo generate`` and ``zoo convert``: commands that work for every generator / builder.

The ``zoo`` CLI adds them at start-up (:func:`add_commands` is idempotent). Importing this
module does not import torch.

Example:
    >>> import click
    >>> group = click.Group()
    >>> add_commands(group); add_commands(group)
    >>> sorted(group.commands)
    ['convert', 'generate']
"""

from __future__ import annotations

import json
import inspect
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import click

__all__ = ["add_commands", "check_output_path", "convert_checkpoint", "finite_float"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")


def check_output_path(out: str | Path, suffixes: tuple[str, ...], *, option: str = "--out") -> Path:
    """Check, before any compute, that ``out`` can be written: a known suffix, not a directory,
    a parent folder that exists or can be made (it is made), where a probe file can be created
    (so read-only file systems are caught even for root). Returns it as a Path.

    Example:
        >>> check_output_path("/tmp/grid.png", IMAGE_SUFFIXES).name
        'grid.png'
        >>> check_output_path("/tmp/grid.txt", IMAGE_SUFFIXES)  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        click.exceptions.BadParameter: /tmp/grid.txt: the output must end in .png, .jpg, ...
    """
    path = Path(out).expanduser()
    if path.suffix.lower() not in suffixes:
        raise click.BadParameter(f"{path}: the output must end in {', '.join(suffixes)}", param_hint=option)
    if path.is_dir():
        raise click.BadParameter(f"{path} is a directory; give a file name", param_hint=option)
    parent = path.parent if str(path.parent) else Path(".")
    existing = parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise click.BadParameter(f"{path}: {existing} is not a directory", param_hint=option)
    if not os.access(existing, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise click.BadParameter(f"{path} cannot be written (no write permission in {existing})", param_hint=option)
    try:
        parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=parent, prefix=".zoo-write-check-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise click.BadParameter(f"{path} cannot be written ({exc.strerror or exc} in {parent})", param_hint=option) from None
    return path


def finite_float(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    """click callback: refuse NaN and +-Inf (``--guidance-scale nan``) before any compute."""
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"must be a finite number, got {value}")
    return value


def convert_checkpoint(name: str, src: str | Path, out: str | Path) -> Path:
    """Read ``src`` in ``name``'s release format (pickles with ``weights_only=True``), check that
    it loads strictly into the model, and write it as safetensors (same keys; the card name and
    the checkpoint's config in the metadata).

    Example:
        >>> convert_checkpoint("no_such.model", "x.bin", "x.safetensors")  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        zoo.errors.UnknownModelError: unknown model 'no_such.model'.
    """
    from safetensors.torch import save_file

    from zoo.builders import CheckpointFiles
    from zoo.config import merge_config
    from zoo.registry import get_registry
    from zoo.weights import load_state_dict_strict, no_init

    registry = get_registry()
    card, _ = registry.find_card(name)
    builder = registry.builder_for(card)
    src, out = Path(src), Path(out)
    key = card.files[0] if card.files else src.name
    ckpt = builder.read_checkpoint(CheckpointFiles({key: src}, origin=f"local-file:{src}"))
    config = merge_config(builder.config_class, [(f"card {card.name}", card.config), (f"checkpoint {src}", ckpt.config)])
    with no_init():
        model = builder.build(config)
    load_state_dict_strict(model, builder.convert(ckpt.state_dict, config), what=f"{card.name} (from {src})")
    tensors = {k: v.detach().contiguous().clone() for k, v in ckpt.state_dict.items()}
    meta = {"zoo_model": card.name, "format": "pt", "source": src.name, "config": json.dumps(ckpt.config, sort_keys=True, default=str)}
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out), metadata=meta)
    return out


def _save_media(media: Any, out: Path, meta: dict) -> None:
    if out.suffix.lower() in (".wav", ".flac"):
        from zoo.media.audio import save_audio

        wav = media[0] if media.dim() > 2 else media
        save_audio(out, wav, int(meta.get("sample_rate", 24000)))
        return
    from zoo.media.image import save_grid

    save_grid([[img for img in media]], out)  # one row of images


def add_commands(cli: click.Group) -> None:
    """Add ``generate`` and ``convert`` to ``cli`` unless present."""
    if "generate" not in cli.commands:
        cli.add_command(generate)
    if "convert" not in cli.commands:
        cli.add_command(convert)


def _parse_seeds(seeds: str | None, seed: int) -> list[int]:
    """``--seeds 0,1,2`` (one grid row per seed) or the single ``--seed``."""
    if seeds is None:
        return [seed]
    try:
        out = [int(v) for v in seeds.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"--seeds takes comma-separated integers, got {seeds!r}", param_hint="--seeds") from None
    if not out:
        raise click.BadParameter("--seeds is empty", param_hint="--seeds")
    return out


def _images_of(result: Any) -> Any:
    """Images from a generator's result: continuous generators return the image tensor itself,
    token generators a :class:`~zoo.sampling.Generation` with ``media``."""
    import torch

    return result if isinstance(result, torch.Tensor) else result.media


@click.command()
@click.argument("condition", nargs=-1, required=False)
@click.option("--model", "model_name", required=True, help="Generator name, e.g. outetts, maskgit.titok_l_32 or mar.")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="Output: .wav for audio, .png for images.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--class", "classes", type=int, multiple=True, help="Class id (repeatable): one grid column per class.")
@click.option("--seeds", default=None, help="Comma-separated seeds for a grid of images: one row per seed (overrides --seed).")
@click.option("--steps", type=click.IntRange(min=1), default=None, help="Sampling steps (the model's default when omitted).")
@click.option("--guidance-scale", type=float, default=None, callback=finite_float, help="CFG weight (the model's default when omitted).")
@click.option("--device", default="cpu", show_default=True)
@click.option("--weights", type=click.Path(exists=True), default=None, help="Local weights in the release format.")
@click.option("--pretrained/--random", default=True, help="--random: random weights (smoke tests, no download).")
@click.option("--max-new-tokens", type=click.IntRange(min=1), default=None, help="AR generators: most tokens to sample.")
@click.option("--clean-caption/--no-clean-caption", default=None,
              help="Text-to-image models with caption cleaning (PixArt-Σ, Nitro-E): --no-clean-caption only "
                   "lower-cases and strips the prompt (the model's default, cleaning, when omitted).")
def generate(condition, model_name, out, seed, classes, seeds, steps, guidance_scale, device, weights, pretrained, max_new_tokens,
             clean_caption) -> None:
    """Generate from CONDITION (text for text-to-speech and text-to-image, class ids for class-conditional models;
    ``--class 207 --class 88`` is the same as ``207 88``). Several classes and ``--seeds`` write
    one grid: a row per seed, a column per class."""
    import zoo
    from zoo.errors import ZooError

    if classes and condition:
        raise click.UsageError("give class ids either as arguments or with --class, not both")
    condition = tuple(str(c) for c in classes) or condition
    if not condition:
        raise click.UsageError("nothing to generate from: give CONDITION (text or class ids) or --class")
    seed_list = _parse_seeds(seeds, seed)
    try:
        card = zoo.get_card(model_name)
    except ZooError as exc:
        raise click.ClickException(str(exc)) from None
    check_output_path(out, AUDIO_SUFFIXES if card.modality == "audio" else IMAGE_SUFFIXES)
    if card.modality == "audio" and len(seed_list) > 1:
        raise click.UsageError("--seeds makes an image grid; audio generators take one --seed")
    try:
        model = zoo.load(model_name, device=device, weights=weights, pretrained=pretrained)
    except ZooError as exc:
        raise click.ClickException(str(exc)) from None
    if model.card.kind != "generator":
        raise click.ClickException(f"{model.card.name} is a {model.card.kind}; `zoo list --kind generator` lists generators")
    if model.card.modality == "audio" or getattr(model, "conditioning", None) == "text":  # text-to-speech / text-to-image
        cond: Any = " ".join(condition)
    else:
        try:
            cond = [int(c) for c in condition]
        except ValueError:
            raise click.ClickException(f"{model.card.name} is class-conditional: give class ids (0..999), got {condition}") from None
    kwargs: dict[str, Any] = {} if max_new_tokens is None else {"max_new_tokens": max_new_tokens}
    if steps is not None:
        kwargs["steps"] = steps
    if guidance_scale is not None:
        kwargs["guidance_scale"] = guidance_scale
    if clean_caption is not None:
        if "clean_caption" not in inspect.signature(model.generate).parameters:
            flag = "--clean-caption" if clean_caption else "--no-clean-caption"
            raise click.UsageError(f"{model.card.name} does not clean captions; drop {flag}")
        kwargs["clean_caption"] = clean_caption
    results = []
    try:
        for s in seed_list:
            results.append(model.generate(cond, seed=s, progress=True, **kwargs))
    except (ValueError, TypeError, ZooError) as exc:
        raise click.ClickException(str(exc)) from None
    first = results[0]
    if card.modality == "audio":
        _save_media(first.media, Path(out), first.meta)
    else:
        from zoo.media.image import save_grid

        save_grid([[img for img in _images_of(r)] for r in results], out)
    if _carries_tokens(first):
        what = f"{first.tokens.ids.shape[-1]} tokens"
    else:
        what = f"{len(seed_list)} x {1 if isinstance(cond, str) else len(cond)} images"
    click.echo(f"wrote {out} ({what})")


def _carries_tokens(result: Any) -> bool:
    """True for a :class:`~zoo.sampling.Generation` (token generators; imported lazily: torch)."""
    from zoo.sampling.output import Generation

    return isinstance(result, Generation)


@click.command()
@click.argument("name")
@click.argument("src", type=click.Path(exists=True, dir_okay=False))
@click.argument("out", type=click.Path(dir_okay=False), required=False)
def convert(name: str, src: str, out: str | None) -> None:
    """Convert a model's release file SRC (e.g. a .bin pickle) to safetensors at OUT."""
    from zoo.errors import ZooError

    target = Path(out) if out else Path(src).with_suffix(".safetensors")
    try:
        path = convert_checkpoint(name, src, target)
    except ZooError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {path}; load it with zoo.load({name!r}, weights={str(path)!r})")
