"""mkdocs hooks: generate the model catalogue and the gallery at build time.

Listed under ``hooks:`` in ``mkdocs.yml``. On every build:

* ``on_config``: registers installed plugins' CLI commands (so the CLI reference shows them) and
  puts one nav entry per model family under "Models";
* ``on_files``: adds the generated pages ``models/index.md``, ``models/<family>.md`` and
  ``gallery.md`` (none of them exists on disk), and ``benchmarks.md`` with its plots, made by
  :mod:`benchmarks_page` from the records in ``benchmarks/results/`` (family pages get a "Speed"
  section from the same records).

The pages come from :mod:`zoo_docs` (beside this file), a pure function of the registry in the
environment that builds the site, so an installed third-party plugin's models appear too.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger("mkdocs.hooks.zoo")
_HERE = Path(__file__).resolve().parent


def _load_generators(file: str = "zoo_docs.py"):
    name = "_zoo_docs_" + Path(file).stem
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, _HERE / file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


_pages: dict[str, str] = {}


def _add_plugin_commands() -> None:
    """Plugins' ``register_commands`` run when the ``zoo`` console script starts; run them here
    too so that the generated CLI reference shows the commands of the installed plugins."""
    import zoo.cli

    add = getattr(zoo.cli, "_add_plugin_commands", None)
    if add is not None:
        add()


def _models_section(nav: list[Any]) -> list[Any] | None:
    for item in nav:
        if isinstance(item, dict) and "Models" in item and isinstance(item["Models"], list):
            return item["Models"]
    return None


def _report_broken_plugins() -> None:
    """A plugin that failed to load would silently drop its models from the catalogue: say so
    as a warning, which ``mkdocs build --strict`` turns into a failed build."""
    import zoo

    for plugin in zoo.plugins():
        if plugin.get("error"):
            log.warning("zoo plugin %s failed to load, its models are missing from the catalogue: %s",
                        plugin["name"], plugin["error"])


def on_config(config, **kwargs):
    gen = _load_generators()
    _report_broken_plugins()
    _add_plugin_commands()
    _pages.clear()
    _pages.update(gen.catalogue_pages(docs_dir=config["docs_dir"]))
    nav = config.get("nav")
    section = _models_section(nav) if nav else None
    if nav and section is None:
        raise ValueError("mkdocs.yml: the nav needs a 'Models' section (a list) for the generated catalogue")
    if section is not None:
        section[:] = gen.nav_entries(_pages)
    log.info("zoo catalogue: %d generated pages", len(_pages))
    return config


def _benchmark_pages(pages: dict[str, str], docs_dir: str) -> dict[str, str]:
    """``benchmarks.md``, its SVG plots, and the family pages with their pictures / samples
    (:mod:`family_media`) and "Speed" sections."""
    bench = _load_generators("benchmarks_page.py")
    records = bench.load_records()
    page, plots = bench.benchmarks_page(records)
    out = {bench.PAGE: page, **plots}
    media = _load_generators("family_media.py")
    families = [Path(p).stem for p in pages if p.startswith("models/") and p != "models/index.md"]
    for path, content in pages.items():
        if path.startswith("models/") and path != "models/index.md":
            family = Path(path).stem
            sections = [media.media_section(family, Path(docs_dir), families), bench.family_section(family, records)]
            if any(sections):
                out[path] = content.rstrip("\n") + "".join("\n\n" + s for s in sections if s)
    log.info("zoo benchmarks: %d records, %d plots", len(records), len(plots))
    return out


def on_files(files, config, **kwargs):
    from mkdocs.structure.files import File

    gen = _load_generators()
    pages = dict(_pages)
    pages["gallery.md"] = gen.figure_page(config["docs_dir"])
    pages.update(_benchmark_pages(pages, config["docs_dir"]))
    for path, content in pages.items():
        existing = files.get_file_from_path(path)
        if existing is not None:
            raise ValueError(f"docs/{path} exists on disk but is generated at build time: delete docs/{path}")
        files.append(File.generated(config, path, content=content))
    return files
