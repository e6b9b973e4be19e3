"""``zoo tokenize`` and ``zoo detokenize``: tokenize a dataset into Parquet shards (locally or on
a Ray cluster) and decode the shards back into media for inspection.

The ``zoo`` CLI adds them at start-up (:func:`add_commands` is idempotent). Importing this
module does not import torch.

Example:
    >>> import click
    >>> group = click.Group()
    >>> add_commands(group); add_commands(group)
    >>> sorted(group.commands)
    ['detokenize', 'tokenize']
"""

from __future__ import annotations

import click

__all__ = ["add_commands"]


@click.command("tokenize")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--model", "model_name", required=True, help="Tokenizer name, e.g. flextok.demo_128.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output directory (new, empty, or an unfinished run to resume).")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True, help="Items per encode call.")
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="local: decode processes (default 2; 0 decodes in the main process). ray: model actors (default 1).")
@click.option("--tokens", type=click.IntRange(min=1), default=None, help="Keep the first K tokens of each item.")
@click.option("--column", default=None, help="Parquet inputs: the column holding encoded image/audio bytes.")
@click.option("--shard-size", type=click.IntRange(min=1), default=1000, show_default=True, help="Items per output shard.")
@click.option("--latents-dtype", type=click.Choice(["float32", "float16"]), default="float32", show_default=True,
              help="Continuous tokenizers: the dtype of the latents column.")
@click.option("--device", default=None, help="Where the model runs (cpu, cuda); Ray actors ask for one GPU each on cuda.")
@click.option("--weights", type=click.Path(exists=True), default=None, help="Local weights in the model's release format.")
@click.option("--ray-address", default=None, help="A running Ray cluster ('auto', 'ray://head:10001'); default: a local runtime.")
@click.option("--overlap", type=click.IntRange(min=0), default=0, show_default=True,
              help="Video tokenizers: frames shared by consecutive clips; a long video gives one row per clip (key#frames=first-last).")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar on stderr.")
def tokenize_cmd(inputs: tuple[str, ...], model_name: str, out: str, engine: str, batch_size: int, workers: int | None,
                 tokens: int | None, column: str | None, shard_size: int, latents_dtype: str, device: str | None,
                 weights: str | None, ray_address: str | None, overlap: int, progress: bool) -> None:
    """Tokenize INPUTS (files, directories, globs, Parquet files, WebDataset .tar shards) into
    OUT/part-NNNNN.parquet + OUT/manifest.json.

    Deterministic and resumable: run the same command again after an interruption and finished
    shards are kept. Inputs that cannot be read are listed in the manifest and counted in the
    final line; they do not stop the run.
    """
    from zoo.datasets.tokenize import tokenize

    if ray_address and engine != "ray":
        raise click.BadParameter("--ray-address applies to --engine ray", param_hint="--ray-address")
    count = {"local": 2, "ray": 1}[engine] if workers is None else workers
    if engine == "ray" and count < 1:
        raise click.BadParameter("the Ray engine needs at least one actor", param_hint="--workers")
    summary = tokenize(model_name, list(inputs), out, engine=engine, batch_size=batch_size,
                       workers=count if engine == "local" else 0, actors=count if engine == "ray" else 1, tokens=tokens,
                       column=column, shard_size=shard_size, latents_dtype=latents_dtype, device=device,
                       ray_address=ray_address, progress=progress, load_kwargs={"weights": weights} if weights else None,
                       overlap=overlap)
    click.echo(summary.line())


@click.command("detokenize")
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder for the decoded images / audio.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Decode only the first N rows.")
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--device", default=None)
@click.option("--weights", type=click.Path(exists=True), default=None, help="Local weights in the model's release format.")
def detokenize_cmd(directory: str, out: str, limit: int | None, batch_size: int, device: str | None,
                   weights: str | None) -> None:
    """Decode the tokens in DIRECTORY (a `zoo tokenize` output) back into media files under OUT."""
    from zoo.datasets.detokenize import detokenize

    written = detokenize(directory, out, limit=limit, batch_size=batch_size, device=device,
                         load_kwargs={"weights": weights} if weights else None)
    click.echo(f"wrote {len(written)} file(s) to {out}")


def add_commands(cli: click.Group) -> None:
    """Add ``tokenize`` and ``detokenize`` to ``cli``."""
    cli.add_command(tokenize_cmd, "tokenize")
    cli.add_command(detokenize_cmd, "detokenize")
