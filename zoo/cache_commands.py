"""The ``zoo registry`` and ``zoo cache`` command groups (added to :data:`zoo.cli.cli`).

* ``zoo registry pin [PATTERN] [--file registry.yaml] [--revision main] [--dry-run]``
* ``zoo registry params [--check]`` (parameter counts, :mod:`zoo.param_counts`)
* ``zoo cache ls [PATTERN] [--json]``, ``zoo cache rm NAME... [--yes] [--partial]``,
  ``zoo cache verify [NAME]``

Example:
    >>> import click
    >>> group = click.Group()
    >>> add_commands(group)
    >>> sorted(group.commands)
    ['cache', 'registry']
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from zoo.errors import ZooError

__all__ = ["add_commands", "cache_group", "registry_group"]


def _fail(exc: Exception) -> None:
    raise click.ClickException(str(exc))


@click.group("registry")
def registry_group() -> None:
    """Maintain the catalogue file (registry.yaml)."""


@registry_group.command("pin")
@click.argument("pattern", default="*")
@click.option("--file", "path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Catalogue file to rewrite (default: the registry.yaml zoo ships).")
@click.option("--revision", default="main", show_default=True, help="Branch or tag to resolve to a commit.")
@click.option("--dry-run", is_flag=True, help="Print the diff; write nothing.")
def pin(pattern: str, path: str | None, revision: str, dry_run: bool) -> None:
    """Pin the cards matching PATTERN (and their dependencies) to a commit.

    Asks the hub (huggingface_hub's HfApi.model_info, files_metadata=True; HF_ENDPOINT honoured)
    for the commit REVISION points at, checks that every file each card lists exists there, and
    rewrites only the cards' `revision` and `file_info` (sizes, sha256 of LFS files). Comments,
    order and formatting of the file stay as they are."""
    from zoo.catalogue import REGISTRY_FILE
    from zoo.pin import check_pinned_text, pin_catalogue

    target = Path(path) if path else REGISTRY_FILE.resolve()
    try:
        result = pin_catalogue(target, pattern, revision=revision)
        check_pinned_text(result.new_text, target.name)
    except ZooError as exc:
        _fail(exc)
    for name, why in result.skipped.items():
        click.echo(f"skipped {name}: {why}", err=True)
    diff = result.diff(target.name)
    if dry_run:
        click.echo(diff, nl=False)
        click.echo(f"# dry run: {len(result.pins)} card(s) resolved, nothing written", err=True)
        return
    if result.new_text != result.old_text:
        target.write_text(result.new_text, encoding="utf-8")
    changed = sum(1 for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++"))
    click.echo(f"pinned {len(result.pins)} card(s) at {revision!r} in {target} ({changed} line(s) written)")
    for p in result.pins:
        click.echo(f"  {p.name:<36} {p.repo} @ {p.commit[:12]}  ({len(p.files)} file(s))")


@registry_group.command("params")
@click.option("--check", is_flag=True, help="Only compare with the committed counts (exit 1 when stale).")
def params(check: bool) -> None:
    """Recompute the built-in cards' parameter counts (zoo/data/param_counts.json).

    Builds each card's model with pretrained=False on the meta device (no memory, no download)
    and counts its parameters; `zoo list` shows the committed counts without importing torch."""
    from zoo.param_counts import main

    code = main(["--check"] if check else [])
    if code:
        raise SystemExit(code)


@click.group("cache")
def cache_group() -> None:
    """See and manage the hub cache (models and metric weights): what is downloaded, its size, remove, verify."""


_CACHE_DIR = click.option("--cache-dir", type=click.Path(file_okay=False), default=None,
                          help="Hub cache directory (default: HF_HUB_CACHE / HF_HOME / ~/.cache/huggingface/hub).")


@cache_group.command("ls")
@click.argument("pattern", default="*")
@click.option("--json", "as_json", is_flag=True, help="Print JSON records.")
@_CACHE_DIR
def cache_ls(pattern: str, as_json: bool, cache_dir: str | None) -> None:
    """List cached models matching PATTERN: files, size on disk, revision, complete or partial;
    then the metric weights `zoo eval` downloaded (metric:lpips-alex, metric:inception, ...)."""
    from zoo.cache import cache_dir as resolve_dir
    from zoo.cache import human_size, list_cached

    models = list_cached(pattern, cache_dir=cache_dir)
    if as_json:
        click.echo(json.dumps([m.to_dict() for m in models], indent=2))
        return
    if not models:
        click.echo(f"nothing cached matches {pattern!r} in {resolve_dir(cache_dir)}")
        return
    rows = [("MODEL", "FILES", "SIZE", "REVISION", "STATUS")]
    for m in models:
        status = m.status + (f" (missing {', '.join(m.missing)})" if m.missing else "")
        if m.partial_bytes:
            status += f"; {human_size(m.partial_bytes)} in .incomplete downloads"
        revs = ",".join(r[:12] for r in m.revisions) or "-"
        rows.append((m.name, str(len(m.files)), human_size(m.size_on_disk), revs, status))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r[:4], widths)) + "  " + r[4])
    click.echo(f"cache: {resolve_dir(cache_dir)}")


@cache_group.command("rm")
@click.argument("names", nargs=-1)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--partial", is_flag=True, help="Also delete orphaned .incomplete downloads older than a day.")
@_CACHE_DIR
def cache_rm(names: tuple[str, ...], yes: bool, partial: bool, cache_dir: str | None) -> None:
    """Remove cached models NAME... (only blobs no other cached model uses) and/or, with
    --partial, interrupted downloads older than a day."""
    from zoo.cache import clean_partial, human_size, plan_removal

    if not names and not partial:
        _fail(ZooError("name the model(s) to remove (`zoo cache ls` lists them), or pass --partial"))
    if names:
        try:
            plan = plan_removal(list(names), cache_dir=cache_dir)
        except ZooError as exc:
            _fail(exc)
        click.echo(f"{', '.join(plan.models)}: {len(plan.links)} file(s), {len(plan.blobs)} blob(s), "
                   f"{human_size(plan.freed)} to free")
        for blob, users in plan.kept_blobs.items():
            click.echo(f"  keeping {Path(blob).name[:16]}...: also used by {', '.join(users)}")
        if not yes and not click.confirm("remove?", default=False):
            click.echo("nothing removed")
            return
        plan.execute()
        click.echo(f"removed; freed {human_size(plan.freed)}")
    if partial:
        if not yes and not names and not click.confirm("delete .incomplete downloads older than a day?", default=False):
            click.echo("nothing removed")
            return
        removed = clean_partial(cache_dir=cache_dir)
        click.echo(f"removed {len(removed)} partial download(s), {human_size(sum(n for _, n in removed))}")


@cache_group.command("verify")
@click.argument("name", required=False)
@_CACHE_DIR
def cache_verify(name: str | None, cache_dir: str | None) -> None:
    """Re-hash cached files (sha256) against their cards; exit 1 on a mismatch."""
    from zoo.cache import verify_cached

    try:
        rows = verify_cached(name, cache_dir=cache_dir)
    except ZooError as exc:
        _fail(exc)
    for r in rows:
        click.echo(f"{r.status:<15} {r.model} {r.file} @ {r.revision[:12]}: {r.detail}")
    bad = [r for r in rows if r.status == "mismatch"]
    if bad:
        raise click.ClickException(f"{len(bad)} file(s) differ from their card; remove them (`zoo cache rm NAME`) and download again")
    click.echo(f"{len(rows)} file(s) checked, no mismatch")


def add_commands(cli: click.Group) -> None:
    """Add the ``registry`` and ``cache`` groups to ``cli``."""
    cli.add_command(registry_group)
    cli.add_command(cache_group)
