"""Engines that run a job over a shard plan: ``local`` (the job runs in this process, worker
processes decode inputs) and ``ray`` (Ray Data: decode tasks, then an actor pool, one set-up job
— one model replica — per actor). Both cut the same batches (the plan's, ``batch_size`` items
at a time inside each shard, :func:`plan_batches`), so a deterministic job gives the same
results on both.

The job is any :class:`BatchJob` (``setup()``, then ``job(decoded)`` per batch): tokenize runs
:class:`EncodeJob`; other dataset commands (``zoo eval``) bring their own. An engine is a
generator: ``run_local(job, loader, shards, ...)`` / ``run_ray(...)`` yield ``(shard_index,
[job result of each batch])`` for every shard once all its batches are done (in any order
across shards), calling ``progress(n)`` as batches of ``n`` items finish.

Example:
    >>> batches = plan_batches([(0, list("abcde")), (1, list("fg"))], batch_size=2)
    >>> [(s, b, items) for s, b, items in batches]
    [(0, 0, ['a', 'b']), (0, 1, ['c', 'd']), (0, 2, ['e']), (1, 0, ['f', 'g'])]
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from zoo.datasets.shards import item_row, token_info
from zoo.datasets.sources import Item, ItemLoader, VideoClips
from zoo.errors import InputError, ZooError

__all__ = [
    "BatchJob", "BatchResult", "EncodeJob", "ModelSpec", "cluster_gpus", "connect_ray", "encode_batch", "merge",
    "plan_batches", "run_local", "run_ray",
]


@dataclass
class BatchResult:
    """Rows (in item order), failures ``{"key", "error"}`` and the token info of a batch (or of
    the batches of a shard, merged with :meth:`extend`)."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)
    info: dict[str, Any] | None = None

    def extend(self, other: BatchResult) -> None:
        self.rows.extend(other.rows)
        self.failures.extend(other.failures)
        self.info = self.info or other.info


@dataclass(frozen=True)
class ModelSpec:
    """How a worker gets the model: ``zoo.load(name, device=device, **load_kwargs)`` when ``name``
    is set (every Ray actor loads its own replica), else the pickled model object ``blob``."""

    name: str | None = None
    load_kwargs: dict[str, Any] = field(default_factory=dict)
    device: str | None = None
    blob: bytes | None = None

    def load(self) -> Any:
        if self.name is not None:
            import zoo

            return zoo.load(self.name, device=self.device, **self.load_kwargs)
        model = pickle.loads(self.blob)
        return model.to(self.device) if self.device else model


def plan_batches(shards: Sequence[tuple[int, Sequence[Any]]], batch_size: int) -> list[tuple[int, int, list[Any]]]:
    """``(shard, batch, items)`` for every batch of every shard: ``batch_size`` consecutive items of
    one shard (the last batch of a shard may be shorter). Engines encode exactly these batches."""
    return [(index, b // batch_size, list(items[b : b + batch_size]))
            for index, items in shards for b in range(0, len(items), batch_size)]


def _model_device(model: Any) -> Any:
    try:
        return next(model.parameters()).device
    except (AttributeError, StopIteration, TypeError):
        return "cpu"


def _encode_group(model: Any, loader: ItemLoader, xs: list[Any], tokens: int | None) -> list[Any]:
    """Encode equal-shape inputs as one batch; per-item results (batch-of-one token objects)."""
    import torch

    batch = torch.stack(xs).to(_model_device(model))
    with torch.inference_mode():
        out = model.encode(batch[:, None, :], loader.sample_rate) if loader.modality == "audio" else model.encode(batch)
    items = [out[i] for i in range(len(xs))]
    if tokens is not None:
        items = [t.truncate(min(tokens, int(t.lengths[0]))) for t in items]
    return items


def _encode_entries(model: Any, loader: ItemLoader, pairs: Sequence[tuple[Item, Any]], tokens: int | None) -> list[Any]:
    """Encode equal-shape ``(item, input)`` pairs as one batch: per pair its tokens, or a failure
    ``{"key", "error"}``. When the model refuses the batch (a :class:`~zoo.errors.ZooError`), each
    pair is encoded alone so only the bad ones fail."""
    try:
        return _encode_group(model, loader, [x for _, x in pairs], tokens)
    except ZooError:
        outs: list[Any] = []
        for item, x in pairs:
            try:
                outs.append(_encode_group(model, loader, [x], tokens)[0])
            except ZooError as exc:
                outs.append({"key": item.key, "error": f"{type(exc).__name__}: {exc}"})
        return outs


def _encode_stream(model: Any, loader: ItemLoader, item: Item, clips: VideoClips, tokens: int | None,
                   clip_batch: int) -> list[tuple[Item, Any]]:
    """Encode a long video's clips as they are decoded, ``clip_batch`` at a time: ``(chunk item,
    tokens or failure)`` per clip; a video that stops decoding half way is one failure under its
    key (its encoded clips are dropped, as if it had failed to decode up front)."""
    out: list[tuple[Item, Any]] = []
    pending: list[tuple[Item, Any]] = []
    try:
        for pair in clips:
            pending.append(pair)
            if len(pending) == clip_batch:
                out.extend(zip((i for i, _ in pending), _encode_entries(model, loader, pending, tokens)))
                pending = []
        if pending:
            out.extend(zip((i for i, _ in pending), _encode_entries(model, loader, pending, tokens)))
    except (ZooError, OSError) as exc:
        return [(item, {"key": item.key, "error": f"{type(exc).__name__}: {exc}"})]
    return out


def encode_batch(model: Any, loader: ItemLoader, decoded: Sequence[tuple[Item, Any, str | None]],
                 tokens: int | None = None, clip_batch: int | None = None) -> BatchResult:
    """Encode one planned batch of decoded items (``ItemLoader.load_many``'s output) into rows.

    Items that failed to decode become failures; the others are encoded in groups of equal
    shape (inputs of one size batch together; an item's tokens never depend on its neighbours'
    sizes). When the model refuses a group (a :class:`~zoo.errors.ZooError`), each of its items
    is encoded alone so only the bad ones fail. ``tokens`` keeps the first K tokens of each item.
    A video longer than one clip (a :class:`~zoo.datasets.sources.VideoClips`) is decoded and
    encoded here, ``clip_batch`` clips at a time (default: the batch's item count), one row per
    clip: memory holds at most ``clip_batch`` of its clips, whatever its length.
    """
    clip_batch = max(1, clip_batch or len(decoded))
    result = BatchResult()
    slots: list[list[tuple[Item, Any]]] = [[] for _ in decoded]
    groups: dict[tuple, list[int]] = {}
    for i, (item, x, error) in enumerate(decoded):
        if error is not None:
            slots[i] = [(item, {"key": item.key, "error": error})]
        elif isinstance(x, VideoClips):
            slots[i] = _encode_stream(model, loader, item, x, tokens, clip_batch)
        else:
            groups.setdefault(tuple(x.shape), []).append(i)
    for idx in groups.values():
        outs = _encode_entries(model, loader, [(decoded[i][0], decoded[i][1]) for i in idx], tokens)
        for i, out in zip(idx, outs):
            slots[i] = [(decoded[i][0], out)]
    for entries in slots:
        for item, slot in entries:
            if isinstance(slot, dict):
                result.failures.append(slot)
            else:
                result.rows.append(item_row(item.key, slot))
                result.info = result.info or token_info(slot)
    return result


def merge(parts: Sequence[BatchResult]) -> BatchResult:
    """The :class:`BatchResult` of a whole shard from its batches' (in batch order)."""
    merged = BatchResult()
    for part in parts:
        merged.extend(part)
    return merged


class BatchJob(Protocol):
    """What an engine runs on every planned batch: ``setup()`` once where it runs (the main
    process, or each Ray actor: load the model there), then ``job(decoded)`` per batch, with
    ``decoded`` from :meth:`ItemLoader.load_many`. The result must pickle (it travels back from
    Ray actors). A job sent to Ray is pickled before ``setup``: keep models out of it until then."""

    def setup(self) -> None: ...

    def __call__(self, decoded: list[tuple[Item, Any, str | None]]) -> Any: ...


@dataclass
class EncodeJob:
    """The tokenize job: :func:`encode_batch` with the model from ``spec`` (loaded in ``setup``),
    or ``model`` when given (the local engine's, already loaded); a long video's clips are
    encoded ``clip_batch`` at a time (tokenize passes its ``batch_size``)."""

    loader: ItemLoader
    spec: ModelSpec | None = None
    tokens: int | None = None
    model: Any = None
    clip_batch: int | None = None

    def setup(self) -> None:
        if self.model is None:
            self.model = self.spec.load()

    def __call__(self, decoded: list[tuple[Item, Any, str | None]]) -> BatchResult:
        return encode_batch(self.model, self.loader, decoded, self.tokens, self.clip_batch)


def _collect(batches: list[tuple[int, int, list[Item]]], results: Iterator[tuple[int, int, Any]],
             progress: Callable[[int], None]) -> Iterator[tuple[int, list[Any]]]:
    """Batch results (any order) -> ``(shard, [result of each batch, in batch order])`` as each
    shard completes."""
    expected: dict[int, int] = {}
    sizes: dict[tuple[int, int], int] = {}
    for shard, b, items in batches:
        expected[shard] = expected.get(shard, 0) + 1
        sizes[shard, b] = len(items)
    pending: dict[int, dict[int, Any]] = {}
    for shard, batch, result in results:
        progress(sizes[shard, batch])
        pending.setdefault(shard, {})[batch] = result
        if len(pending[shard]) == expected[shard]:
            parts = pending.pop(shard)
            yield shard, [parts[b] for b in sorted(parts)]


def _init_decode_worker() -> None:
    import torch

    torch.set_num_threads(1)


def run_local(job: BatchJob, loader: ItemLoader, shards: Sequence[tuple[int, Sequence[Item]]], *, batch_size: int,
              workers: int, progress: Callable[[int], None] = lambda n: None) -> Iterator[tuple[int, list[Any]]]:
    """The local engine: ``job`` runs in this process on the batches in plan order while
    ``workers`` processes (spawned, one torch thread each) decode the next batches; ``workers=0``
    decodes in this process. At most ``2 * workers + 1`` decoded batches wait in memory. Yields
    ``(shard, [job result per batch])`` as shards complete."""
    if workers < 0:
        raise InputError(f"workers must be >= 0 (0 decodes in the main process), got {workers}")
    batches = plan_batches(shards, batch_size)
    job.setup()

    def results() -> Iterator[tuple[int, int, Any]]:
        if workers == 0:
            for shard, b, items in batches:
                yield shard, b, job(loader.load_many(items))
            return
        import multiprocessing
        from collections import deque
        from concurrent.futures import ProcessPoolExecutor

        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_decode_worker) as pool:
            todo = iter(batches)
            window: deque = deque()
            for shard, b, items in todo:
                window.append((shard, b, pool.submit(loader.load_many, items)))
                if len(window) > 2 * workers:
                    break
            while window:
                shard, b, future = window.popleft()
                nxt = next(todo, None)
                if nxt is not None:
                    window.append((nxt[0], nxt[1], pool.submit(loader.load_many, nxt[2])))
                yield shard, b, job(future.result())

    yield from _collect(batches, results(), progress)


def _decode(batch: dict[str, Any], loader: ItemLoader) -> dict[str, Any]:
    """Ray Data stage 1 (tasks): rows holding one planned batch of items each -> their decoded inputs."""
    import numpy as np

    payloads = [pickle.dumps(loader.load_many(pickle.loads(p)), protocol=5) for p in batch["payload"]]
    return {"shard": batch["shard"], "batch": batch["batch"], "payload": np.array(payloads, dtype=object)}


class _JobActor:
    """Ray Data stage 2 (an actor pool): each actor sets the job up once (one model replica) and
    runs it on decoded batches."""

    def __init__(self, job: BatchJob, threads: int):
        import torch

        torch.set_num_threads(max(1, threads))
        self.job = job
        self.job.setup()

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        payloads = [pickle.dumps(self.job(pickle.loads(p)), protocol=5) for p in batch["payload"]]
        return {"shard": batch["shard"], "batch": batch["batch"], "payload": np.array(payloads, dtype=object)}


def connect_ray(address: str | None = None) -> Any:
    """The ``ray`` module, connected: to ``address`` (``"auto"``, ``"ray://head:10001"``) unless
    this process already is; a local runtime when neither. Ray missing is an
    :class:`~zoo.errors.InputError` naming the extra."""
    try:
        import ray
    except ImportError:
        raise InputError("--engine ray needs Ray: `pip install 'zoo[ray]'`") from None
    if not ray.is_initialized():
        import logging

        ray.init(address=address, ignore_reinit_error=True, log_to_driver=False, include_dashboard=False,
                 logging_level=logging.WARNING)
    return ray


def cluster_gpus(address: str | None = None) -> int:
    """GPUs the Ray cluster at ``address`` has (connecting as :func:`connect_ray` does)."""
    return int(connect_ray(address).cluster_resources().get("GPU", 0))


def run_ray(job: BatchJob, loader: ItemLoader, shards: Sequence[tuple[int, Sequence[Item]]], *, batch_size: int,
            actors: int, progress: Callable[[int], None] = lambda n: None, address: str | None = None,
            actor_cpus: float = 1.0, decode_cpus: float = 0.5, gpus_per_actor: float = 0.0
            ) -> Iterator[tuple[int, list[Any]]]:
    """The Ray engine: a Ray Data pipeline over the planned batches (one dataset row per batch, so
    the batches are the local engine's): decode tasks (``decode_cpus`` each) stream into an
    actor pool of ``actors`` actors (``actor_cpus`` CPUs and ``gpus_per_actor`` GPUs each), each
    holding one set-up copy of ``job`` (one model replica); Ray's streaming executor applies
    backpressure, and the driver collects results into shards. Connects to ``address`` (a
    running cluster, ``"auto"``) unless Ray is already initialised; else starts a local runtime.
    Yields ``(shard, [job result per batch])`` as shards complete."""
    if actors < 1:
        raise InputError(f"the Ray engine needs at least one actor, got {actors}")
    import logging

    ray = connect_ray(address)
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # the summary line and zoo's bar say what happens
    batches = plan_batches(shards, batch_size)
    if not batches:
        return
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    rows = [{"shard": s, "batch": b, "payload": pickle.dumps(items, protocol=5)} for s, b, items in batches]
    ds = ray.data.from_items(rows, override_num_blocks=max(1, min(len(rows), 200)))
    ds = ds.map_batches(_decode, fn_kwargs={"loader": loader}, batch_size=1, num_cpus=decode_cpus)
    ds = ds.map_batches(_JobActor, fn_constructor_kwargs={"job": job, "threads": int(actor_cpus)},
                        batch_size=1, num_cpus=actor_cpus, num_gpus=gpus_per_actor,
                        compute=ray.data.ActorPoolStrategy(size=actors))

    def results() -> Iterator[tuple[int, int, Any]]:
        for row in ds.iter_rows():
            yield int(row["shard"]), int(row["batch"]), pickle.loads(row["payload"])

    yield from _collect(batches, results(), progress)
