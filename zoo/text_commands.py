"""``zoo text-stats``: compare text tokenizers on your own files (bytes per token, tokens per
word, vocabulary utilisation, round trips; with ``--lm``, token-level and exact byte-level bits
per byte), as a table, JSON and a plot.

Example:
    >>> from click.testing import CliRunner
    >>> from zoo.cli import cli
    >>> result = CliRunner().invoke(cli, ["text-stats", "--help"])
    >>> result.exit_code, "--lm" in result.output
    (0, True)
"""

from __future__ import annotations

import click

from zoo.errors import ZooError

__all__ = ["add_commands", "load_lm"]


def load_lm(folder: str, device: str = "cpu"):
    """A :class:`~zoo.text.byte_lm.ByteLM` from a local transformers causal-LM folder
    (``config.json`` + weights + ``tokenizer.json`` or a SentencePiece ``.model``); the model
    class comes from ``config.json``'s ``model_type`` through transformers' public Auto class,
    never from remote code."""
    from pathlib import Path

    from zoo.compat.torchvision import ensure_torchvision
    from zoo.text.byte_lm import ByteLM

    path = Path(folder).expanduser()
    tok_files = [path / "tokenizer.json"] + sorted(path.glob("*.model"))
    tok_file = next((p for p in tok_files if p.is_file()), None)
    if not (path / "config.json").is_file() or tok_file is None:
        raise ZooError(f"--lm {folder}: expected a transformers model folder with config.json, the weights and "
                       "tokenizer.json (or a SentencePiece .model)")
    ensure_torchvision()
    try:
        from transformers import AutoModelForCausalLM
    except ImportError:
        raise ZooError("--lm needs transformers: pip install 'zoo[transformers]'") from None
    model = AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True, trust_remote_code=False).to(device).eval()
    from zoo.text.tokenizer import TextTokenizer, special_token_names

    special = special_token_names({p.name: p for p in path.iterdir() if p.suffix == ".json"})
    return ByteLM(model, TextTokenizer.from_file(tok_file, special_tokens=special))


def add_commands(cli: click.Group) -> None:
    """Add ``zoo text-stats`` to the ``zoo`` group."""

    @cli.command("text-stats")
    @click.argument("inputs", nargs=-1, required=True)
    @click.option("--model", "models", required=True,
                  help="Text tokenizer card(s), comma-separated (kl3m.004_128k_cased,superbpe.olmo2_8b_t180k), or paths "
                       "to tokenizer.json / .model files.")
    @click.option("--lm", "lm_dirs", multiple=True, metavar="DIR",
                  help="A local transformers causal LM folder (repeatable): adds a row with its tokenizer and its "
                       "bits per byte, token-level and exact byte-level.")
    @click.option("--lines", is_flag=True, help="One text per non-empty line (default: one per file).")
    @click.option("--chunk-bytes", type=click.IntRange(min=16), default=2000, show_default=True,
                  help="--lm: texts are scored in chunks of at most this many bytes.")
    @click.option("--out", type=click.Path(dir_okay=False), default=None, help="Write the rows as JSON here.")
    @click.option("--plot", type=click.Path(dir_okay=False), default=None, help="Bar charts (.png, .pdf or .svg).")
    @click.option("--device", default="cpu", show_default=True, help="--lm: where the LM runs.")
    def text_stats_cmd(inputs, models, lm_dirs, lines, chunk_bytes, out, plot, device) -> None:
        """Measure text tokenizers on INPUTS (text files, folders, globs)."""
        import os

        import zoo
        from zoo.text.stats import lm_bits_per_byte, plot_stats, read_texts, stats_table, tokenizer_stats, write_json
        from zoo.text.tokenizer import TextTokenizer

        if plot and not plot.lower().endswith((".png", ".pdf", ".svg")):
            raise click.BadParameter(f"{plot!r} must end in .png, .pdf or .svg", param_hint="--plot")
        texts = read_texts(list(inputs), lines=lines)
        rows = []
        for name in [m.strip() for m in models.split(",") if m.strip()]:
            if os.path.isfile(os.path.expanduser(name)):
                tok = TextTokenizer.from_file(os.path.expanduser(name))
            else:
                if zoo.get_card(name).modality != "text":
                    raise ZooError(f"{name} is not a text tokenizer (zoo list --modality text lists them)")
                tok = zoo.load(name)
            rows.append(tokenizer_stats(tok, texts, name=name))
        for folder in lm_dirs:
            byte_lm = load_lm(folder, device)
            row = tokenizer_stats(byte_lm.tok, texts, name=f"{os.path.basename(os.path.normpath(folder))} (LM)")
            row.update(lm_bits_per_byte(byte_lm, texts, chunk_bytes=chunk_bytes))
            rows.append(row)
        click.echo(f"{len(texts)} text(s), {rows[0]['bytes']} bytes, {rows[0]['words']} words")
        click.echo(stats_table(rows), nl=False)
        if out:
            write_json(rows, out)
            click.echo(f"wrote {out}")
        if plot:
            plot_stats(rows, plot)
            click.echo(f"wrote {plot}")
