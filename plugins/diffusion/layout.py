"""The diffusers folder layout read as data: ``<sub>/config.json`` (json, nothing it names is
imported) and ``<sub>/diffusion_pytorch_model.safetensors`` (or a sharded ``*.safetensors.index.json``).

Example:
    >>> import json, tempfile, torch
    >>> from pathlib import Path
    >>> from safetensors.torch import save_file
    >>> root = Path(tempfile.mkdtemp())
    >>> (root / "vae").mkdir()
    >>> _ = (root / "vae" / "config.json").write_text(json.dumps({"_class_name": "AutoencoderKL", "latent_channels": 4}))
    >>> save_file({"w": torch.zeros(2)}, str(root / "vae" / "diffusion_pytorch_model.safetensors"))
    >>> paths = {p.relative_to(root).as_posix(): p for p in root.rglob("*") if p.is_file()}
    >>> component_config(paths, "vae", "AutoencoderKL")
    {'latent_channels': 4}
    >>> list(component_state(paths, "vae"))
    ['w']
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from zoo.errors import CheckpointError

__all__ = ["component_config", "component_state", "read_json", "subfolder_files"]

#: Keys of a diffusers/transformers config that are bookkeeping, not architecture.
_BOOKKEEPING = ("_class_name", "_diffusers_version", "_name_or_path", "transformers_version", "architectures",
                "auto_map", "custom_pipelines", "torch_dtype", "dtype")


def read_json(path: Path, what: str) -> dict[str, Any]:
    """A json object from ``path`` (an unreadable one is a CheckpointError naming the fix)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read {what} {path}: {exc}; re-download it or pass weights=DIR with a valid copy") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{what} {path} is not a json object")
    return data


def subfolder_files(paths: Mapping[str, Path], sub: str) -> dict[str, Path]:
    """The files of ``paths`` under ``sub/`` keyed by their name inside it."""
    prefix = sub.rstrip("/") + "/"
    return {name[len(prefix):]: p for name, p in paths.items() if name.startswith(prefix)}


def component_config(paths: Mapping[str, Path], sub: str, class_names: str | Sequence[str]) -> dict[str, Any]:
    """``sub/config.json`` as a dict without bookkeeping keys; its ``_class_name`` (when present)
    must be one of ``class_names`` (files of another model are refused before anything is built)."""
    files = subfolder_files(paths, sub)
    if "config.json" not in files:
        raise CheckpointError(f"no {sub}/config.json among {sorted(paths)}: a diffusers-layout release holds "
                              f"{sub}/config.json next to its weights")
    cfg = read_json(files["config.json"], f"{sub} config")
    names = (class_names,) if isinstance(class_names, str) else tuple(class_names)
    found = cfg.get("_class_name")
    if found is not None and found not in names:
        raise CheckpointError(f"{files['config.json']} describes a {found}, not a {' or '.join(names)}: these files belong to another model")
    return {k: v for k, v in cfg.items() if k not in _BOOKKEEPING}


def component_state(paths: Mapping[str, Path], sub: str, stem: str = "diffusion_pytorch_model",
                    state_prefix: Optional[str] = None) -> dict[str, Any]:
    """The weights under ``sub/`` (``<stem>.safetensors`` or the shards an ``<stem>.safetensors.index.json``
    names), keys prefixed with ``state_prefix`` when given."""
    from zoo.weights import load_safetensors

    files = subfolder_files(paths, sub)
    index = files.get(f"{stem}.safetensors.index.json")
    if f"{stem}.safetensors" in files:
        shards = [files[f"{stem}.safetensors"]]
    elif index is not None:
        weight_map = read_json(index, f"{sub} weight index").get("weight_map")
        if not isinstance(weight_map, dict):
            raise CheckpointError(f"{index} has no weight_map")
        names = sorted(set(weight_map.values()))
        missing = [n for n in names if n not in files]
        if missing:
            raise CheckpointError(f"{index} names shards {missing} that are not among the files; download them or pass weights=DIR with all of them")
        shards = [files[n] for n in names]
    else:
        raise CheckpointError(f"no {sub}/{stem}.safetensors (or its .index.json) among {sorted(paths)}")
    state: dict[str, Any] = {}
    for shard in shards:
        part, _meta = load_safetensors(shard)
        state.update(part)
    if state_prefix:
        state = {f"{state_prefix}{k}": v for k, v in state.items()}
    return state
