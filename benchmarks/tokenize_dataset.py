"""``zoo tokenize`` throughput: items/s of the local engine (1 and 2 decode workers) and the Ray
engine (1 and 2 actors), scaling efficiency, and the per-item cost breakdown.

One run on generated JPEGs (``--items`` images of ``--width`` x ``--height``, decoded and resized
to the model's size) with ``--model`` (default ``flextok.demo_128``, embedded weights, offline).

* **Throughput** (wall clock): each configuration tokenizes the same items through the engine
  (``zoo.datasets.engines.run_local`` / ``run_ray``, shards written by the same writer as
  ``zoo tokenize``), ``--reps`` times on a quarter of the items and on all; ``items/s`` is the
  difference (start-up of worker processes / actors and model replicas cancels; it is reported
  apart). Scaling efficiency = items/s with 2 / (2 x items/s with 1).
* **Cost breakdown** (CPU-seconds per item, this process, one torch thread, ``--reps``
  interleaved repetitions, medians): decode + resize (``ItemLoader.load``), model
  (``encode`` on batches of ``--batch-size``), write (rows + one Parquet shard). CPU-seconds do
  not grow when the machine is busy; wall-clock items/s do, so the record stores the load
  average and the notes say how busy the machine was.

    flock /tmp/zoo_heavy.lock python benchmarks/tokenize_dataset.py --items 96 --reps 3
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
from _record import add_results_option, load_average, start


def make_images(root: Path, n: int, width: int, height: int) -> Path:
    """``n`` JPEGs with smooth gradients and noise (decode cost like a photo's)."""
    import numpy as np
    from PIL import Image

    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width]
    for i in range(n):
        base = np.stack([(xx * (i + 1) % 256), (yy * 3 % 256), ((xx + yy + 17 * i) % 256)], -1).astype(np.float32)
        img = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=90)
        (root / f"{i:05d}.jpg").write_bytes(buf.getvalue())
    return root


def breakdown(model, loader, items, batch_size: int, reps: int) -> dict[str, float]:
    """Median CPU-seconds per item of decode/resize, model and write (this process, interleaved)."""
    from zoo.datasets.engines import encode_batch
    from zoo.datasets.shards import write_shard

    samples: dict[str, list[float]] = {"decode_resize": [], "model": [], "write": []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(reps):
            t0 = time.process_time()
            decoded = loader.load_many(items)
            t1 = time.process_time()
            results = [encode_batch(model, loader, decoded[b : b + batch_size]) for b in range(0, len(decoded), batch_size)]
            t2 = time.process_time()
            rows = [r for res in results for r in res.rows]
            write_shard(tmp, 0, rows)
            t3 = time.process_time()
            for key, dt in (("decode_resize", t1 - t0), ("model", t2 - t1), ("write", t3 - t2)):
                samples[key].append(dt / len(items))
    # encode_batch's time includes turning tokens into rows; it is part of "model" here (tiny)
    return {k: statistics.median(v) for k, v in samples.items()}


def run_engine(kind: str, count: int, spec, model, loader, items, batch_size: int, shard_size: int, out: Path) -> dict:
    """Tokenize ``items`` with one engine configuration: wall seconds, and CPU-seconds of this
    process plus its finished children (the local engine's decode workers; not Ray's workers)."""
    import resource
    import shutil

    from zoo.datasets.engines import EncodeJob, merge, run_local, run_ray
    from zoo.datasets.shards import write_shard

    shards = [(i // shard_size, items[i : i + shard_size]) for i in range(0, len(items), shard_size)]
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu0, t0 = time.process_time(), time.perf_counter()
    if kind == "local":
        results = run_local(EncodeJob(loader, model=model), loader, shards, batch_size=batch_size, workers=count)
    else:
        results = run_ray(EncodeJob(loader, spec=spec), loader, shards, batch_size=batch_size, actors=count)
    written = 0
    for index, parts in results:
        written += write_shard(out, index, merge(parts).rows)["rows"]
    wall = time.perf_counter() - t0
    kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = time.process_time() - cpu0 + (kids1.ru_utime + kids1.ru_stime) - (kids0.ru_utime + kids0.ru_stime)
    assert written == len(items), (written, len(items))
    return {"wall_s": wall, "cpu_s": cpu}


def measure(kind: str, count: int, spec, model, loader, items, args, tmp: Path) -> dict:
    """items/s of one configuration by difference: runs on a quarter of the items and on all of
    them (``--reps`` of each, interleaved, median wall/CPU seconds); (n_all - n_quarter) /
    (t_all - t_quarter) cancels start-up (spawning decode workers, starting actors and their
    model replicas) and Ray's bursty delivery of results."""
    small = items[: max(args.batch_size, len(items) // 4)]
    if kind == "ray":  # the first pipeline of a Ray session also starts its worker processes: not measured
        run_engine(kind, count, spec, model, loader, small, args.batch_size, args.shard_size, tmp / "warm")
    runs: dict[str, list[dict]] = {"small": [], "all": []}
    for _ in range(args.reps):  # quarter, all, quarter, all...: medians of each (Ray's start-up varies run to run)
        runs["small"].append(run_engine(kind, count, spec, model, loader, small, args.batch_size, args.shard_size, tmp / "small"))
        runs["all"].append(run_engine(kind, count, spec, model, loader, items, args.batch_size, args.shard_size, tmp / "all"))
    a, b = ({k: statistics.median(r[k] for r in runs[part]) for k in ("wall_s", "cpu_s")} for part in ("small", "all"))
    extra = len(items) - len(small)
    row = {"engine": kind, "workers" if kind == "local" else "actors": count, "items": len(items),
           "items_per_s": round(extra / (b["wall_s"] - a["wall_s"]), 2) if b["wall_s"] > a["wall_s"] else None,
           "wall_s": round(b["wall_s"], 2), "startup_s": round(max(0.0, a["wall_s"] - len(small) * (b["wall_s"] - a["wall_s"]) / extra), 2),
           "items_per_s_incl_startup": round(len(items) / b["wall_s"], 2), "load_average": load_average()}
    if kind == "local":
        row["cpu_s_per_item"] = round((b["cpu_s"] - a["cpu_s"]) / extra, 5)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="flextok.demo_128")
    parser.add_argument("--items", type=int, default=96)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--height", type=int, default=384)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--shard-size", type=int, default=32)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--ray-cpus", type=int, default=4, help="logical CPUs of the local Ray runtime (scheduling slots)")
    parser.add_argument("--skip-ray", action="store_true")
    add_results_option(parser)
    args = parser.parse_args()
    torch.set_num_threads(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    import zoo
    from zoo.datasets import ItemLoader, list_items
    from zoo.datasets.engines import ModelSpec

    run = start("tokenize", title="zoo tokenize throughput (local and Ray engines)", kind="throughput", threads=1,
                settings=vars(args), reference=None, results=args.results)
    model = zoo.load(args.model)
    loader = ItemLoader.for_model(model)
    spec = ModelSpec(name=args.model)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        items = list_items([make_images(tmp / "images", args.items, args.width, args.height)]).items
        cost = breakdown(model, loader, items[: min(len(items), 32)], args.batch_size, args.reps)
        total = sum(cost.values())
        rows.append({"row": "cost_per_item_cpu_s", **{k: round(v, 5) for k, v in cost.items()}, "total": round(total, 5),
                     "bound_items_per_s_per_core": round(1 / total, 2)})
        print(f"CPU-s per item: decode/resize {cost['decode_resize']*1e3:.2f} ms, model {cost['model']*1e3:.2f} ms, "
              f"write {cost['write']*1e3:.3f} ms", flush=True)
        configs = [("local", 1), ("local", 2)] + ([] if args.skip_ray else [("ray", 1), ("ray", 2)])
        if not args.skip_ray:
            import ray

            ray.init(num_cpus=args.ray_cpus, include_dashboard=False, log_to_driver=False)
        for kind, count in configs:
            row = measure(kind, count, spec, model, loader, items, args, tmp / f"out_{kind}_{count}")
            rows.append(row)
            print(row, flush=True)
        if not args.skip_ray:
            ray.shutdown()
    for kind in ("local", "ray"):
        one = next((r for r in rows if r.get("engine") == kind and 1 in (r.get("workers"), r.get("actors"))), None)
        two = next((r for r in rows if r.get("engine") == kind and 2 in (r.get("workers"), r.get("actors"))), None)
        if one and two and one["items_per_s"] and two["items_per_s"]:
            eff = two["items_per_s"] / (2 * one["items_per_s"])
            rows.append({"row": f"scaling_{kind}", "efficiency": round(eff, 3)})
            print(f"{kind}: scaling efficiency 1 -> 2 = {eff:.2f}", flush=True)
    cores = os.cpu_count()
    run.write(rows, notes=[
        f"Shared machine: {cores} cores used by several sessions at once (see load_average); wall-clock items/s are "
        "bounded by the cores this run got, the CPU-second breakdown is not.",
        "local engine: one model in the main process (1 torch thread); 'workers' decode processes. Ray engine: decode "
        "tasks + 'actors' model replicas (1 CPU, 1 torch thread each) on a local runtime with --ray-cpus logical CPUs.",
        "items_per_s by difference: (n - n/4) / (t(n) - t(n/4)), t = median wall time of --reps runs on n/4 items and on n, so start-up (spawning "
        "decode workers, starting actors and model replicas: startup_s) cancels; items_per_s_incl_startup = n / t(n).",
        "cpu_s_per_item (local engine): CPU-seconds of the main process and its decode workers per item, by the same difference.",
    ])


if __name__ == "__main__":
    main()
