"""Training on a folder of pictures (docs/own-pictures.md): how fast the first decode is, and what training from the
memory-mapped cache costs in memory and speed against the same images in an in-memory array.

    python benchmarks/own_pictures.py decode --n 10000 --size 178x218    # CelebA-sized JPEGs: first decode, re-open
    python benchmarks/own_pictures.py stream --n 60000 --limit-mb 512    # 64×64 set larger than a RLIMIT_DATA

decode: times serial decoding, the thread pool minivae uses, and a spawn process pool (alternating, `--repeats`
rounds) on the same files, then the cache build itself (open_cache into a fresh directory) and re-opening it.
stream: builds the cache of n 64×64 pictures, then (1) in a child process whose RLIMIT_DATA (`ulimit -d`: heap and
private anonymous memory; a read-only file mapping is not counted) is below the set's size, shows an in-memory copy
of the set fails and trains one epoch (mlp, hidden 64) from the memory map, sampling /proc/self/status (peak
RssAnon; VmHWM, RssFile at the end); (2) times reading one epoch's shuffled batches from the memory map (page
cache warm) and from an in-memory copy; (3) alternates training epochs on `--n-train` pictures (500 test
pictures) read from the memory map and from an in-memory copy, same settings and seed, and prints images/s of each.
Pictures are synthetic (smooth random colour fields, JPEG quality 90), made once into --dir; none are committed.
"""
import argparse
import json
import multiprocessing
import resource
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image


def make_pictures(folder, n, width, height, seed=0):
    """n JPEGs of width × height in `folder` (kept if already there): bicubically enlarged random 1/8-size colours."""
    folder.mkdir(parents=True, exist_ok=True)
    if len(list(folder.glob("*.jpg"))) == n:
        return sorted(folder.glob("*.jpg"))
    rng = np.random.default_rng(seed)
    for i in range(n):
        small = rng.integers(0, 256, (max(1, height // 8), max(1, width // 8), 3), dtype=np.uint8)
        Image.fromarray(small).resize((width, height), Image.BICUBIC).save(folder / f"{i:06d}.jpg", quality=90)
    return sorted(folder.glob("*.jpg"))


def status():
    """/proc/self/status memory lines in MB."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return {k: int(fields[k].split()[0]) / 1024 for k in ("VmHWM", "VmRSS", "RssAnon", "RssFile", "VmData")}


def decode(args):
    from minivae.data.cache import open_cache
    from minivae.data.decode import decode_files, decode_picture

    width, height = (int(s) for s in args.size.split("x"))
    paths = make_pictures(Path(args.dir) / f"{width}x{height}-{args.n}", args.n, width, height)
    n = len(paths)
    runs = {"serial": lambda: [decode_picture(p, 3, 64, 64) for p in paths],
            "threads": lambda: list(decode_files(paths, 3, 64, 64))}
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        start = time.perf_counter()
        list(pool.map(decode_picture, paths[:2], [3] * 2, [64] * 2, [64] * 2))
        print(f"spawn pool start (2 workers, imports minivae): {time.perf_counter() - start:.2f} s")
        runs["spawn"] = lambda: list(pool.map(decode_picture, paths, [3] * n, [64] * n, [64] * n, chunksize=64))
        rates, cpu = {name: [] for name in runs}, {name: [] for name in runs}
        for _ in range(args.repeats):
            for name, run in runs.items():
                start, start_cpu = time.perf_counter(), time.process_time()
                run()
                rates[name].append(n / (time.perf_counter() - start))
                cpu[name].append((time.process_time() - start_cpu) / n * 1e3)
    for name, r in rates.items():
        print(f"{name:8s} {' '.join(f'{x:6.0f}' for x in r)} images/s"
              + (f"   CPU time of this process {' '.join(f'{x:.2f}' for x in cpu[name])} ms/image"
                 if name != "spawn" else ""))
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        open_cache(paths[0].parent, cache, (3, 64, 64), quiet=True)
        first = time.perf_counter() - start
        start = time.perf_counter()
        open_cache(paths[0].parent, cache, (3, 64, 64), quiet=True)
        again = time.perf_counter() - start
    print(f"cache build: {first:.1f} s for {n} pictures ({n / first:.0f} images/s, {first * 1e4 / n:.0f} s per 10 000);"
          f" re-open (list, compare, map): {again * 1e3:.0f} ms")


def limited_epoch(args):
    """Child process: RLIMIT_DATA set, an in-memory copy must fail, one epoch trains from the memory map."""
    limit = args.limit_mb * 2 ** 20
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    import minivae
    from minivae.data import load_dataset

    data = load_dataset("folder", args.folder, cache_dir=args.cache_dir)
    try:
        data.train[:]
        copy = "succeeded (the limit is not below the set!)"
    except MemoryError:
        copy = "MemoryError"
    peak = {"RssAnon": 0.0}

    def sample():
        while not done.is_set():
            peak["RssAnon"] = max(peak["RssAnon"], status()["RssAnon"])
            time.sleep(0.05)

    done = threading.Event()
    threading.Thread(target=sample, daemon=True).start()
    result = minivae.train(Path(args.cache_dir) / "run-limited", dataset="folder", data_dir=args.folder,
                           cache_dir=args.cache_dir, epochs=1, hidden=(64,), quiet=True)
    done.set()
    print(json.dumps({"limit_mb": args.limit_mb, "in_memory_copy": copy, "peak_rss_anon_mb": peak["RssAnon"],
                      **{k: v for k, v in status().items()}, "images_per_s": result.metrics[0]["images_per_s"],
                      "n_train": len(data.train)}))


def read_epochs(data, repeats, batch_size=128):
    """µs per batch of reading one epoch's shuffled batches from the memory map (the page cache holds the file: it
    was just written or read) and from an in-memory copy, alternating."""
    loaded = data.train[:]
    order = np.random.default_rng(0).permutation(len(loaded))
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    times = {"memory map": [], "in memory": []}
    for _ in range(repeats):
        for name, images in (("memory map", data.train), ("in memory", loaded)):
            start = time.perf_counter()
            for idx in batches:
                images[idx]
            times[name].append((time.perf_counter() - start) / len(batches) * 1e6)
    print(f"reading one epoch's batches of {batch_size}, µs per batch: "
          + "; ".join(f"{name} {' '.join(f'{t:.0f}' for t in ts)}" for name, ts in times.items()))


def stream(args):
    import minivae
    from minivae.data import load_dataset

    folder = Path(args.dir) / f"64x64-{args.n}"
    make_pictures(folder, args.n, 64, 64)
    cache = folder.parent / f"cache-64x64-{args.n}"
    start = time.perf_counter()
    data = load_dataset("folder", folder, cache_dir=cache, quiet=True)
    print(f"cache: {time.perf_counter() - start:.1f} s to build or open; set {data.train.array.nbytes / 1e6:.0f} MB "
          f"({len(data.train)} train + {len(data.test)} test pictures)")
    if not args.no_limit_run:
        child = subprocess.run([sys.executable, __file__, "limited-epoch", "--folder", str(folder), "--cache-dir",
                                str(cache), "--limit-mb", str(args.limit_mb)], capture_output=True, text=True)
        print("under RLIMIT_DATA:", child.stdout.strip() or child.stderr.strip().splitlines()[-1])
    read_epochs(data, args.repeats)
    speed_runs = {"mlp": ((64,), args.n_train), "conv64": (None, args.n_train // 10)}
    for model, (hidden, n_train) in ((m, speed_runs[m]) for m in args.models.split(",")):
        mapped = dict(dataset="folder", data_dir=str(folder), cache_dir=str(cache), n_train=n_train, n_test=500)
        loaded = dict(data=(data.train[:n_train], data.test[:500]))
        rates = {"memory map": [], "in memory": []}
        for i in range(args.repeats):
            for name, source in [("memory map", mapped), ("in memory", loaded)][::1 if i % 2 == 0 else -1]:
                r = minivae.train(cache / f"run-{model}", model=model, hidden=hidden, epochs=1, quiet=True,
                                  **source)
                rates[name].append(r.metrics[0]["images_per_s"])
        print(f"{model} {'hidden ' + str(hidden) if hidden else ''} on {n_train} pictures, images/s: "
              + "; ".join(f"{name} {' '.join(f'{x:.0f}' for x in r)}" for name, r in rates.items()))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("decode")
    d.add_argument("--n", type=int, default=10000)
    d.add_argument("--size", default="178x218", help="W x H of the synthetic JPEGs (CelebA: 178x218)")
    d.add_argument("--repeats", type=int, default=2)
    s = sub.add_parser("stream")
    s.add_argument("--n", type=int, default=60000)
    s.add_argument("--limit-mb", type=int, default=512, help="RLIMIT_DATA of the memory-map epoch (MB)")
    s.add_argument("--n-train", type=int, default=10000, help="pictures per speed-comparison epoch (conv64: /10)")
    s.add_argument("--repeats", type=int, default=2)
    s.add_argument("--models", default="mlp,conv64", help="speed comparisons: mlp (hidden 64), conv64 (n-train/10)")
    s.add_argument("--no-limit-run", action="store_true", help="skip the epoch under RLIMIT_DATA")
    for c in (d, s):
        c.add_argument("--dir", default=f"{tempfile.gettempdir()}/minivae-bench-pictures")
    c = sub.add_parser("limited-epoch")
    c.add_argument("--folder")
    c.add_argument("--cache-dir")
    c.add_argument("--limit-mb", type=int)
    args = p.parse_args()
    {"decode": decode, "stream": stream, "limited-epoch": limited_epoch}[args.command](args)


if __name__ == "__main__":
    main()
