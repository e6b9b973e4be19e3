"""The ``zoo`` command: list, info, plugins, download, doctor, reconstruct (+ plugin commands).

Example:
    >>> from click.testing import CliRunner
    >>> result = CliRunner().invoke(cli, ["list", "--json"])
    >>> result.exit_code
    0
"""

from __future__ import annotations

import inspect
import json
import sys

import click

from zoo.cards import KINDS, MODALITIES
from zoo.errors import ZooError
from zoo.generation_commands import (
    AUDIO_SUFFIXES,
    IMAGE_SUFFIXES,
    check_output_path,
    finite_float,
)

__all__ = ["cli", "main"]


def _fail(exc: Exception) -> None:
    raise click.ClickException(str(exc))


class _ZooGroup(click.Group):
    """A click group that turns any :class:`~zoo.errors.ZooError` a command lets through into a
    one-line ``Error: ...`` and exit status 1 (never a traceback)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ZooError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=_ZooGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="zoo")
def cli() -> None:
    """zoo: multimodal tokenizers, token generators and token reducers behind one interface."""


_LIST_COLUMNS = ("NAME", "KIND", "MODALITY", "PARAMS", "DOWNLOAD", "LICENCE", "METRIC", "PARITY", "WEIGHTS")


@cli.command("list")
@click.argument("pattern", default="*")
@click.option("--kind", type=click.Choice(KINDS), help="Only this kind.")
@click.option("--modality", type=click.Choice(MODALITIES), help="Only this modality.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON records (zoo info's, one per model) instead of a table.")
@click.option("--pinned/--not-pinned", "pinned", default=None,
              help="Only cards pinned to a commit / only cards that follow the repository's main branch.")
def list_cmd(pattern: str, kind: str | None, modality: str | None, as_json: bool, pinned: bool | None = None) -> None:
    """List registered models matching PATTERN: a family ('titok'), or fnmatch wildcards ('titok.*_vae').

    The table shows each model's parameter count (computed from the architecture), download
    size (when the card records its files' sizes, else ?), licence (with 'research only' where
    the card says so), first reported metric, parity status, and where its weights come from
    (hub pinned to a commit / following the main branch, embedded, none).
    """
    import zoo
    from zoo.card_facts import card_facts, format_bytes, headline_metric
    from zoo.model import format_count

    names = zoo.list_models(pattern, kind=kind, modality=modality)
    if pinned is not None:
        names = [n for n in names if zoo.get_card(n).hub_repo and zoo.get_card(n).pinned == pinned]
    if as_json:
        click.echo(json.dumps([zoo.info(n) for n in names], indent=2))
        return
    if not names:
        filters = ", ".join(f"{k}={v}" for k, v in (("kind", kind), ("modality", modality), ("pinned", pinned)) if v is not None)
        click.echo(f"no models match {pattern!r}" + (f" ({filters})" if filters else "") + "; `zoo list` shows them all")
        return
    rows = []
    for n in names:
        card = zoo.get_card(n)
        facts = card_facts(card)
        params = facts["parameters"]
        rows.append((
            n + (" *" if card.default else ""), card.kind, card.modality,
            "—" if params == 0 else format_count(params), format_bytes(facts["download_bytes"]),
            facts["licence_label"], headline_metric(card) or "—", facts["parity_status"], facts["weights"],
        ))
    widths = [max(len(r[i]) for r in [*rows, _LIST_COLUMNS]) for i in range(len(_LIST_COLUMNS))]
    for r in [_LIST_COLUMNS, *rows]:
        click.echo("  ".join(col.ljust(w) for col, w in zip(r, widths)).rstrip())
    click.echo("(* = the family's default: `zoo.load(family)`; DOWNLOAD ? = file sizes not recorded until "
               "`zoo registry pin`; METRIC = the first the card reports, see `zoo info NAME`)")


@cli.command()
@click.argument("name")
def info(name: str) -> None:
    """Show a model's card as JSON (licence, weights, paper, metrics)."""
    import zoo

    try:
        record = zoo.info(name)
    except ZooError as exc:
        _fail(exc)
    if record["license"]["research_only"]:
        click.echo(f"# NOTE: {record['name']} is for research use only ({record['license_summary']})", err=True)
    click.echo(json.dumps(record, indent=2))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def plugins(as_json: bool) -> None:
    """List loaded plugins, their hooks, and plugins that failed to load."""
    import zoo

    records = zoo.plugins()
    if as_json:
        click.echo(json.dumps(records, indent=2))
        return
    for p in records:
        origin = f"{p['distribution']} {p['version']}" if p["distribution"] else p["module"]
        status = f"FAILED: {p['error']}" if p["error"] else ", ".join(p["hooks"])
        click.echo(f"{p['name']:<16} {origin:<24} {status}")


@cli.command()
@click.argument("name")
@click.option("--revision", help="Override the card's revision (its pinned commit, or main when not pinned).")
@click.option("--cache-dir", type=click.Path(file_okay=False), help="Hub cache directory.")
@click.option("--force", is_flag=True, help="Download again even if cached.")
def download(name: str, revision: str | None, cache_dir: str | None, force: bool) -> None:
    """Download a model's files (and its dependencies') into the cache."""
    import zoo

    try:
        files = zoo.download(name, revision=revision, cache_dir=cache_dir, force=force)
    except ZooError as exc:
        _fail(exc)
    stack = [("", files)]
    while stack:
        prefix, f = stack.pop()
        for fname, path in f.paths.items():
            click.echo(f"{prefix}{fname}\t{path}")
        stack.extend((f"{prefix}{role}/", dep) for role, dep in f.deps.items())


def doctor_report() -> dict:
    """What ``zoo doctor`` reports, as a JSON-able dict (versions, devices, attention backends,
    torchvision, hub settings, the cache: where, how big, free disk; where the metric networks'
    weights would come from; plugins, models)."""
    import os
    import platform
    import warnings

    import torch

    import zoo
    from zoo.cache import cache_summary
    from zoo.compat.torchvision import ensure_torchvision
    from zoo.evaluation.metric_weights import metric_weights_status
    from zoo.hub import is_offline
    from zoo.nn.attention import available_backends, resolve_backend

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    attention = {}
    for dev in devices:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            attention[dev] = {"backends": dict(available_backends(dev)), "default": resolve_backend(None, dev)}
    try:
        tv = ensure_torchvision()
    except Exception as exc:  # noqa: BLE001 -- report, do not crash the doctor
        tv = f"broken ({exc})"
    return {
        "zoo": zoo.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "devices": devices,
        "cuda_device": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "threads": torch.get_num_threads(),
        "attention": attention,
        "torchvision": tv,
        "hub": {
            "endpoint": os.environ.get("HF_ENDPOINT") or "https://huggingface.co",
            "offline": is_offline(),
            "env": {k: os.environ[k] for k in ("HF_ENDPOINT", "HF_HUB_OFFLINE", "HF_HOME", "HF_HUB_CACHE") if k in os.environ},
        },
        "cache": cache_summary(),
        "metric_weights": metric_weights_status(),
        "plugins": {p["name"]: (f"FAILED {p['error']}" if p["error"] else "ok") for p in zoo.plugins()},
        "models": len(zoo.list_models()),
    }


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def doctor(as_json: bool) -> None:
    """Print torch, devices, attention backends that work here, the hub cache (where, size, free
    disk), where zoo eval's metric weights would come from, and plugin health."""
    from zoo.cache import human_size

    r = doctor_report()
    if as_json:
        click.echo(json.dumps(r, indent=2))
        return
    click.echo(f"zoo {r['zoo']}  python {r['python']}  torch {r['torch']}")
    click.echo(f"devices: {', '.join(r['devices'])}" + (f" ({r['cuda_device']})" if r["cuda_device"] else "")
               + f"; threads {r['threads']}")
    for dev, att in r["attention"].items():
        for name, status in att["backends"].items():
            mark = "ok" if status == "ok" else "unavailable"
            click.echo(f"attention [{dev}] {name:<9} {mark}" + ("" if status == "ok" else f": {status}"))
        click.echo(f"attention [{dev}] default -> {att['default']}")
    tv = r["torchvision"]
    click.echo(f"torchvision: {tv}" + (" (op schemas defined by zoo.compat.torchvision so timm imports)" if tv == "patched" else ""))
    hub = r["hub"]
    click.echo(f"hub: {hub['endpoint']}, " + ("offline (HF_HUB_OFFLINE)" if hub["offline"] else "online")
               + (f"; env {hub['env']}" if hub["env"] else ""))
    c = r["cache"]
    partial = f", {c['partial_files']} partial download(s) ({human_size(c['partial_bytes'])}; `zoo cache rm --partial`)" if c["partial_files"] else ""
    metrics = f" + {c['metric_files']} metric weight file(s)" if c.get("metric_files") else ""
    click.echo(f"cache: {c['cache_dir']}" + (f" ({human_size(c['size_on_disk'])} in {c['repos']} repo(s){metrics}{partial})" if c["exists"] else " (empty: not created yet)")
               + f"; free disk {human_size(c['free_disk'])}")
    click.echo("metric weights (zoo eval): " + "; ".join(f"{n} {status}" for n, status in r["metric_weights"].items()))
    for name, status in r["plugins"].items():
        click.echo(f"plugin {name}: {status}")
    click.echo(f"models: {r['models']} registered")


def _decode_kwargs(model, **candidates):
    params = inspect.signature(model.decode).parameters
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    return {k: v for k, v in candidates.items() if v is not None and (accepts_any or k in params)}


def _token_counts(ctx: click.Context, param: click.Parameter, value: str | None) -> list[int] | None:
    """``--tokens 1,4,16`` -> [1, 4, 16]; anything else is a usage error naming the entry."""
    if value is None:
        return None
    counts = []
    for part in value.split(","):
        part = part.strip()
        try:
            count = int(part)
        except ValueError:
            raise click.BadParameter(f"{part!r} is not a whole number; give comma-separated token counts, e.g. 1,4,16,64,256") from None
        if count < 1:
            raise click.BadParameter(f"token counts start at 1, got {count}")
        counts.append(count)
    return counts


def _codebook_counts(ctx: click.Context, param: click.Parameter, value: str | None) -> list[int] | None:
    """``--codebooks 1,2,4,8``: numbers of residual levels to decode (whole numbers >= 1)."""
    if value is None:
        return None
    counts = []
    for part in value.split(","):
        try:
            count = int(part.strip())
        except ValueError:
            raise click.BadParameter(f"{part.strip()!r} is not a whole number; give comma-separated level counts, e.g. 1,2,4,8") from None
        if count < 1:
            raise click.BadParameter(f"codebook level counts start at 1, got {count}")
        counts.append(count)
    return counts


@cli.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--model", "model_name", required=True, help="Tokenizer name, e.g. flextok.demo_tiny.")
@click.option("--tokens", "token_counts", default=None, callback=_token_counts,
              help="Comma-separated prefix lengths to decode, e.g. 1,4,16,64,256.")
@click.option("--out", type=click.Path(), required=True,
              help="Output: a grid image (.png) for images; for audio a .wav (one input) or a folder (any number of "
                   "inputs), each reconstruction with a spectrogram .png (input above, output below).")
@click.option("--steps", type=click.IntRange(min=1), default=None, help="Decoder steps (flow / diffusion decoders).")
@click.option("--guidance-scale", type=float, default=None, callback=finite_float, help="Classifier-free guidance scale.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the decoder's noise.")
@click.option("--device", default="cpu", show_default=True)
@click.option("--weights", type=click.Path(exists=True), default=None, help="Local weights in the model's release format.")
@click.option("--codebooks", "codebook_counts", default=None, callback=_codebook_counts,
              help="Audio codecs with several codebook levels: comma-separated numbers of levels to decode, e.g. "
                   "1,2,4,8 (one file per count: OUT with _q<N> before the suffix).")
def reconstruct(inputs, model_name, token_counts, out, steps, guidance_scale, seed, device, weights, codebook_counts=None) -> None:
    """Encode INPUTS and decode them back: a coarse-to-fine grid for images, a file for audio.

    Works for discrete (token ids) and continuous (latent) image tokenizers alike. Tokenizers whose
    tokens form one fixed 2D grid (LlamaGen VQ, WeTok, the KL-VAEs) show input | reconstruction
    instead (and a picture of the latents for continuous ones); --tokens does not apply to them. Every argument,
    the input files and the output path are checked before the model is loaded."""
    import torch
    from tqdm.auto import tqdm

    import zoo

    try:
        card = zoo.get_card(model_name)
    except ZooError as exc:
        _fail(exc)
    if card.kind != "tokenizer":
        _fail(ZooError(f"{card.name} is a {card.kind}; reconstruct needs a tokenizer (`zoo list --kind tokenizer`)"))
    if card.modality in ("video", "3d"):  # chunked video / point clouds: zoo.reconstruct_media
        from zoo import reconstruct_media as rm

        try:
            rm.check_media_request(card.modality, inputs, out, token_counts, codebook_counts, steps, guidance_scale)
            model = zoo.load(model_name, device=device, weights=weights)
            run = rm.reconstruct_video if card.modality == "video" else rm.reconstruct_points
            run(model, inputs[0], out, device=device, echo=click.echo)
        except (ZooError, FileNotFoundError) as exc:
            _fail(exc)
        return
    is_audio = card.modality == "audio"
    if is_audio:  # one file per input: --out FILE.wav (one input) or --out DIR/ (zoo.audio_reconstruct)
        from zoo.audio_reconstruct import audio_outputs, is_folder_output

        try:
            audio_paths = audio_outputs(inputs, out)
        except ZooError as exc:
            _fail(exc)
    if is_audio and token_counts:
        _fail(ZooError("--tokens applies to image tokenizers; audio tokens cover the whole signal"))
    if codebook_counts and not is_audio:
        _fail(ZooError("--codebooks applies to audio codecs with several codebook levels; images use --tokens"))
    if not (is_audio and is_folder_output(out)):
        check_output_path(out, AUDIO_SUFFIXES if is_audio else IMAGE_SUFFIXES)
    if is_audio:
        from zoo.media.audio import load_audio

        waves = [load_audio(path) for path in inputs]  # an unreadable file fails here, before the model loads
    else:
        from zoo.media.image import open_image

        for path in inputs:
            open_image(path)
    try:
        model = zoo.load(model_name, device=device, weights=weights)
    except ZooError as exc:
        _fail(exc)
    params = inspect.signature(model.decode).parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    for flag, value, key in (("--steps", steps, "steps"), ("--guidance-scale", guidance_scale, "guidance_scale")):
        if value is not None and not (takes_any or key in params):
            _fail(ZooError(f"{flag} does not apply to {card.name}: its decoder takes no {key}"))
    if is_audio:
        from zoo.audio_reconstruct import write_reconstructions

        try:
            write_reconstructions(model, waves, audio_paths, codebook_counts, echo=click.echo,
                                  decode_kwargs=lambda: _decode_kwargs(model, generator=torch.Generator(device).manual_seed(seed)))
        except ZooError as exc:
            _fail(exc)
        return
    from zoo.media.image import load_images, save_grid

    size = getattr(model, "image_size", None)
    declared = getattr(model, "num_tokens", None)
    if token_counts and isinstance(declared, int) and max(token_counts) > declared:
        _fail(ZooError(f"--tokens {[c for c in token_counts if c > declared]} out of range: {card.name} makes "
                       f"{declared} tokens per image (use 1..{declared})"))
    try:
        images = load_images(inputs, size=size).to(device)
    except (ValueError, TypeError, FileNotFoundError) as exc:
        _fail(exc)
    with torch.inference_mode():
        tokens = model.encode(images)
        if tokens.meta.get("grid") is not None:  # a fixed-length 2D tokenizer (VQGAN, VAE): no prefixes
            _reconstruct_grid(model, card, tokens, images, token_counts, inputs, out, seed, device)
            return
        full = int(tokens.lengths.max())
        counts = token_counts or [full]
        bad = [c for c in counts if not 1 <= c <= full]
        if bad:
            _fail(ZooError(f"--tokens {bad} out of range: {card.name} makes {full} tokens per image (use 1..{full})"))
        kwargs = _decode_kwargs(model, steps=steps, guidance_scale=guidance_scale)
        columns = []
        for k in tqdm(counts, desc=f"decoding {len(inputs)} image(s)", unit="prefix"):
            kw = dict(kwargs)
            if "generator" in inspect.signature(model.decode).parameters:
                kw["generator"] = torch.Generator(device).manual_seed(seed)
            try:  # Tokens or Latents; a model that decodes only the full length says so
                columns.append(model.decode(tokens.truncate(k), **kw))
            except ZooError as exc:
                _fail(exc)
    rows = [[images[i]] + [col[i] for col in columns] for i in range(len(inputs))]
    save_grid(rows, out, col_labels=["input"] + [f"{k} tok" for k in counts])
    click.echo(f"wrote {out}: {len(inputs)} image(s) x {len(counts)} token counts ({', '.join(map(str, counts))})")


def _reconstruct_grid(model, card, tokens, images, token_counts, inputs, out, seed, device) -> None:
    """``zoo reconstruct`` for tokenizers whose tokens form one fixed 2D grid (``meta["grid"]``):
    a grid over token counts means nothing there, so each row is input | reconstruction, plus a
    picture of the latents (their first three principal components) for continuous tokenizers."""
    import torch

    from zoo.interfaces import Latents
    from zoo.media.image import latent_preview, save_grid

    h, w = (int(v) for v in tokens.meta["grid"])
    if token_counts:
        _fail(ZooError(f"--tokens does not apply to {card.name}: a fixed-length 2D tokenizer, it makes one {h}x{w} "
                       "grid of tokens per image and decodes all of them (drop --tokens)"))
    kw = {}
    if "generator" in inspect.signature(model.decode).parameters:
        kw["generator"] = torch.Generator(device).manual_seed(seed)
    try:
        decoded = model.decode(tokens, **kw)
    except ZooError as exc:
        _fail(exc)
    rows = [[images[i], decoded[i]] for i in range(len(inputs))]
    labels = ["input", "reconstruction"]
    if isinstance(tokens, Latents):
        size = tuple(images.shape[-2:])
        for i, row in enumerate(rows):
            row.append(latent_preview(tokens.values[i].t().reshape(-1, h, w), size=size))
        labels.append(f"latents {h}x{w}x{tokens.dim} (PCA)")
    save_grid(rows, out, col_labels=labels)
    if isinstance(tokens, Latents):
        what = f"{h}x{w} latents of {tokens.dim} channels"
    else:
        groups = f" x {tokens.ids.shape[1]} ids" if tokens.ids.dim() == 3 else ""
        what = f"{h}x{w} token grid{groups}"
    click.echo(f"wrote {out}: {len(inputs)} image(s), input | reconstruction ({what} per image)")


def _add_core_commands() -> None:
    from zoo.generation_commands import add_commands

    add_commands(cli)


_add_core_commands()
__import__("zoo.cache_commands").cache_commands.add_commands(cli)  # zoo registry pin, zoo cache ls/rm/verify
__import__("zoo.text_commands").text_commands.add_commands(cli)  # zoo text-stats
__import__("zoo.eval_commands").eval_commands.add_commands(cli)  # zoo eval
__import__("zoo.tokenize_commands").tokenize_commands.add_commands(cli)  # zoo tokenize, zoo detokenize


def _add_plugin_commands() -> None:
    from zoo.registry import get_registry

    registry = get_registry()
    for impl in registry.pm.hook.register_commands.get_hookimpls():
        try:
            impl.function(cli=cli)
        except Exception as exc:  # one broken plugin must not break the CLI
            click.echo(f"warning: plugin {registry.pm.get_name(impl.plugin)} failed to add commands: {exc}", err=True)


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    """Warnings on the command line read ``Warning: ...`` (a rename note, a skipped plugin), with
    no Python file and source line."""
    return f"Warning: {message}\n"


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``zoo`` console script. A :class:`~zoo.errors.ZooError` (a plugin that
    fails to load under ``ZOO_STRICT_PLUGINS=1``, a bad name) prints one ``Error:`` line and exits
    with status 1, never a traceback."""
    import warnings

    warnings.formatwarning = _one_line_warning
    try:
        _add_plugin_commands()
        cli.main(args=argv, prog_name="zoo")
    except ZooError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
