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

from zoo.errors import ZooError

__all__ = ["cli", "main"]


def _fail(exc: Exception) -> None:
    raise click.ClickException(str(exc))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="zoo")
def cli() -> None:
    """zoo: multimodal tokenizers, token generators and token reducers behind one interface."""


@cli.command("list")
@click.argument("pattern", default="*")
@click.option("--kind", type=click.Choice(["tokenizer", "generator", "token_reducer"]), help="Only this kind.")
@click.option("--modality", help="Only this modality (image, audio, video, 3d, text, ...).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON records instead of a table.")
def list_cmd(pattern: str, kind: str | None, modality: str | None, as_json: bool) -> None:
    """List registered models matching PATTERN (fnmatch wildcards, e.g. 'flextok.*')."""
    import zoo

    names = zoo.list_models(pattern, kind=kind, modality=modality)
    if as_json:
        click.echo(json.dumps([zoo.info(n) for n in names], indent=2))
        return
    if not names:
        click.echo(f"no models match {pattern!r}" + (f" (kind={kind})" if kind else ""))
        return
    rows = []
    for n in names:
        card = zoo.get_card(n)
        if card.hub_repo:
            weights = "hub"
        elif card.package_dir:
            weights = "embedded"
        else:
            weights = "none needed" if card.kind == "token_reducer" and card.weights_available else "none published"
        rows.append((n + (" *" if card.default else ""), card.kind, card.modality, card.license.weights or card.license.code, weights))
    widths = [max(len(r[i]) for r in rows + [("NAME", "KIND", "MODALITY", "LICENCE", "WEIGHTS")]) for i in range(5)]
    for r in [("NAME", "KIND", "MODALITY", "LICENCE", "WEIGHTS")] + rows:
        click.echo("  ".join(col.ljust(w) for col, w in zip(r, widths)).rstrip())
    click.echo("(* = the family's default: `zoo.load(family)`)")


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
@click.option("--revision", help="Override the card's pinned revision.")
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


@cli.command()
def doctor() -> None:
    """Print torch, devices, attention backends that work here, and plugin health."""
    import os
    import platform

    import torch

    import zoo
    from zoo.compat.torchvision import ensure_torchvision
    from zoo.nn.attention import available_backends, resolve_backend

    click.echo(f"zoo {zoo.__version__}  python {platform.python_version()}  torch {torch.__version__}")
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    click.echo(f"devices: {', '.join(devices)}" + (f" ({torch.cuda.get_device_name()})" if torch.cuda.is_available() else "")
               + f"; threads {torch.get_num_threads()}")
    for dev in devices:
        for name, status in available_backends(dev).items():
            mark = "ok" if status == "ok" else "unavailable"
            click.echo(f"attention [{dev}] {name:<9} {mark}" + ("" if status == "ok" else f": {status}"))
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            click.echo(f"attention [{dev}] default -> {resolve_backend(None, dev)}")
    try:
        tv = ensure_torchvision()
    except Exception as exc:  # report, do not crash the doctor
        tv = f"broken ({exc})"
    click.echo(f"torchvision: {tv}" + (" (op schemas defined by zoo.compat.torchvision so timm imports)" if tv == "patched" else ""))
    hub_env = {k: os.environ[k] for k in ("HF_ENDPOINT", "HF_HUB_OFFLINE", "HF_HOME", "HF_HUB_CACHE") if k in os.environ}
    click.echo(f"hub: {hub_env or 'defaults (https://huggingface.co, online)'}")
    for p in zoo.plugins():
        click.echo(f"plugin {p['name']}: " + (f"FAILED {p['error']}" if p["error"] else "ok"))
    click.echo(f"models: {len(zoo.list_models())} registered")


def _decode_kwargs(model, **candidates):
    params = inspect.signature(model.decode).parameters
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    return {k: v for k, v in candidates.items() if v is not None and (accepts_any or k in params)}


@cli.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--model", "model_name", required=True, help="Tokenizer name, e.g. flextok.demo_tiny.")
@click.option("--tokens", "token_counts", default=None, help="Comma-separated prefix lengths to decode, e.g. 1,4,16,64,256.")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="Output file: a grid image (.png) or audio (.wav).")
@click.option("--steps", type=int, default=None, help="Decoder steps (flow / diffusion decoders).")
@click.option("--guidance-scale", type=float, default=None, help="Classifier-free guidance scale.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the decoder's noise.")
@click.option("--device", default="cpu", show_default=True)
@click.option("--weights", type=click.Path(exists=True), default=None, help="Local weights in the model's release format.")
def reconstruct(inputs, model_name, token_counts, out, steps, guidance_scale, seed, device, weights) -> None:
    """Encode INPUTS and decode them back: a coarse-to-fine grid for images, a file for audio.

    Works for discrete (token ids) and continuous (latent) image tokenizers alike."""
    import torch
    from tqdm.auto import tqdm

    import zoo

    try:
        model = zoo.load(model_name, device=device, weights=weights)
    except ZooError as exc:
        _fail(exc)
    card = model.card
    if card.kind != "tokenizer":
        _fail(ZooError(f"{card.name} is a {card.kind}; reconstruct needs a tokenizer (`zoo list --kind tokenizer`)"))
    generator = torch.Generator(device).manual_seed(seed)
    if card.modality == "audio":
        from zoo.media.audio import load_audio, save_audio

        if len(inputs) != 1:
            _fail(ZooError("audio reconstruct takes one input file"))
        wave, sr = load_audio(inputs[0])
        with torch.inference_mode():
            tokens = model.encode(wave, sr)
            if token_counts:
                _fail(ZooError("--tokens applies to image tokenizers; audio tokens cover the whole signal"))
            audio = model.decode(tokens, **_decode_kwargs(model, generator=generator))
        lengths = tokens.meta.get("num_samples")  # decoders emit whole hops: trim to the input's length
        if lengths:
            audio = audio[..., : int(lengths[0])]
        save_audio(out, audio, model.sample_rate)
        click.echo(f"wrote {out} ({tokens.max_length} tokens, {audio.shape[-1] / model.sample_rate:.2f} s)")
        return
    from zoo.media.image import load_images, save_grid

    size = getattr(model, "image_size", None)
    try:
        images = load_images(inputs, size=size).to(device)
    except (ValueError, TypeError, FileNotFoundError) as exc:
        _fail(exc)
    with torch.inference_mode():
        tokens = model.encode(images)
        full = int(tokens.lengths.max())
        counts = [int(c) for c in token_counts.split(",")] if token_counts else [full]
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


def _add_core_commands() -> None:
    from zoo.generation_commands import add_commands

    add_commands(cli)


_add_core_commands()


def _add_plugin_commands() -> None:
    from zoo.registry import get_registry

    registry = get_registry()
    for impl in registry.pm.hook.register_commands.get_hookimpls():
        try:
            impl.function(cli=cli)
        except Exception as exc:  # one broken plugin must not break the CLI
            click.echo(f"warning: plugin {registry.pm.get_name(impl.plugin)} failed to add commands: {exc}", err=True)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``zoo`` console script."""
    _add_plugin_commands()
    cli.main(args=argv, prog_name="zoo")


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
