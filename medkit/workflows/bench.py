"""``python -m medkit bench``: how much science fits in the machine.

Per method and image size: training-step throughput (images/s), the ratio of a method's step
to the backbone's own forward + backward over the same two views (the overhead of views, heads
and loss), peak resident memory of a training process, and the data pipeline's rate
(slices/s through batch sampling and the method's two-view augmentation) against the rate the
step consumes them. Also the dense losses: naive against chunked, memory and time, for 32 x 32,
64 x 64 and 128 x 128 maps. Writes JSON and a markdown table and prints the machine.

Timings are medians over repeated steps after a warm-up. The dense losses' memory is the peak
of what torch's allocator holds during the call above what it held before: on CUDA from
``torch.cuda.max_memory_allocated``; on the CPU from the profiler's allocation records (every op's
allocations and frees, in time order), exact for these matrix operations and not hidden under the
interpreter's import-time peak as the resident set is. A method's memory is the peak resident set
of a fresh process (the CPU allocator records miss oneDNN's convolution buffers).
"""
from __future__ import annotations

import json
import platform
import statistics
import subprocess
import sys
from pathlib import Path

import torch
from torch.utils.benchmark import Timer

from medkit.data.views import make_views
from medkit.engine.loop import make_optimizer
from medkit.engine.runs import check_below_folder
from medkit.errors import MedkitError
from medkit.methods import METHODS, build_method
from medkit.data.batches import Batch
from medkit.models.unet import DEFAULT_CHANNELS


def check_options(out: str | Path, sizes: tuple[int, ...], methods: tuple[str, ...], batch: int, repeats: int,
                  stride: int = 2 ** len(DEFAULT_CHANNELS)) -> None:
    """Every option of a benchmark, and where it writes, checked before minutes of timing."""
    bad = [s for s in sizes if s < stride or s % stride]
    if bad:
        raise MedkitError(f"sizes: {', '.join(map(str, bad))} is not a positive multiple of {stride} "
                          f"(the U-Net halves the image {len(DEFAULT_CHANNELS)} times)")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise MedkitError(f"methods: {', '.join(unknown)} unknown; choose from {', '.join(METHODS)} or all")
    if batch < 2:
        raise MedkitError(f"batch_size must be at least 2 (contrastive pairs), got {batch}")
    if repeats < 1:
        raise MedkitError(f"repeats must be at least 1, got {repeats}")
    out = check_below_folder(out)
    for target in (out.with_suffix(".json"), out.with_suffix(".md")):
        if target.is_dir():
            raise MedkitError(f"out {out}: {target} is a folder")


def machine() -> dict:
    return {"python": platform.python_version(), "platform": platform.platform(), "processor": platform.processor(),
            "cpus": torch.get_num_threads(), "torch": torch.__version__,
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def paired_times(fns: list, repeats: int, warmup: int = 2) -> list[float]:
    """Median time of each function, timed in alternation (one call of each per round), so that a
    load change on the machine hits every function alike and their ratios stay meaningful. Each call
    is timed by ``torch.utils.benchmark.Timer``, which synchronises CUDA before reading the clock
    and runs with the process's thread count."""
    timers = [Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads()) for fn in fns]
    for fn in fns:
        for _ in range(warmup):
            fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for timer, ts in zip(timers, times):
            ts.append(timer.timeit(1).mean)
    return [statistics.median(ts) for ts in times]


def bench_method(name: str, size: int = 64, batch: int = 16, repeats: int = 5) -> dict:
    """Step time, backbone time and data-pipeline rate of one method's training step (memory:
    :func:`peak_rss_mb`).

    The step is what :func:`medkit.workflows.pretrain.pretrain` runs (method defaults, channels_last, fused
    AdamW, momentum updates); the backbone reference is the U-Net's own training step on the same
    two views: forward and backward of each view (encoder only for global methods, the whole U-Net
    for Pix2Rep) and the optimiser update of its parameters. Their ratio is the method's overhead:
    views, heads, loss and momentum encoder.
    """
    torch.manual_seed(0)
    m = build_method(name)
    m.train()
    m.to(memory_format=torch.channels_last)
    opt = make_optimizer([p for p in m.parameters() if p.requires_grad], lr=1e-4)
    opt_backbone = make_optimizer(list(m.net.parameters()), lr=1e-4)
    x = torch.rand(batch, 1, size, size)
    b = Batch(x, torch.arange(batch) % 4, torch.arange(batch) // 4)
    g = torch.Generator().manual_seed(0)

    def step():
        out = m.loss(b, g, 10**9)
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        opt.step()
        m.after_step()

    views = make_views(x, *m.views, g)
    dense = name == "pix2rep"  # the only method whose (default) loss uses the decoder

    def backbone():
        feats = [m.net.features(v)["out"] if dense else m.net.encode(v)[-1] for v in (views.x1, views.x2)]
        loss = sum(f.float().mean() for f in feats)
        opt_backbone.zero_grad(set_to_none=True)
        loss.backward()
        opt_backbone.step()

    t_step, t_backbone = paired_times([step, backbone], repeats)
    pool = torch.rand(512, 1, size, size)

    def pipeline():
        idx = torch.randint(len(pool), (batch,), generator=g)
        make_views(pool[idx], *m.views, g)

    (t_data,) = paired_times([pipeline], repeats)
    return {"method": name, "size": size, "batch": batch, "step_s": t_step, "images_per_s": batch / t_step,
            "backbone_s": t_backbone, "step_over_backbone": t_step / t_backbone,
            "data_slices_per_s": batch / t_data, "data_rate_over_step_rate": t_step / t_data}


_RSS = """
import resource, sys, json
sys.path.insert(0, {root!r})
from medkit.workflows.bench import bench_method
bench_method({name!r}, {size}, {batch}, repeats=1)
print(json.dumps({{"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def peak_rss_mb(name: str, size: int, batch: int) -> float:
    """Peak resident memory (MB) of a fresh interpreter that builds the method and runs its steps:
    what a training process needs, interpreter and libraries included (the allocator peak of a
    step misses oneDNN's convolution buffers on the CPU)."""
    code = _RSS.format(root=str(Path(__file__).resolve().parents[1]), name=name, size=size, batch=batch)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_mb"]


def allocator_peak_mb(fn) -> float:
    """Peak MB held by torch's allocator while ``fn()`` runs, above what was held before."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    # each op's own allocations minus frees, at the op's start; frees outside ops are "[memory]" events
    events = sorted((e for e in prof.events() if e.self_cpu_memory_usage), key=lambda e: e.time_range.start)
    held = peak = 0
    for e in events:
        held += e.self_cpu_memory_usage
        peak = max(peak, held)
    return peak / 2**20


def bench_dense(side: int, channels: int = 32, chunk: int = 256) -> dict:
    """Dense InfoNCE (IDEAL) naive vs chunked on a (1, C, side, side) map: allocator peak of one
    forward + backward, its time, the loss value and the gradient (they must agree)."""
    from medkit.losses.chunked import dense_info_nce_chunked
    from medkit.losses.dense import dense_info_nce
    torch.manual_seed(0)
    q0 = torch.randn(1, channels, side, side)
    k = torch.randn(1, channels, side, side)
    res: dict = {"side": side, "positions": side * side, "chunk": chunk}
    grads = {}
    for name, loss_fn in (("naive", dense_info_nce), ("chunked", lambda a, b: dense_info_nce_chunked(a, b, chunk=chunk))):
        q = q0.clone().requires_grad_(True)
        out = {}

        def call():
            loss = loss_fn(q, k)
            loss.backward()
            out["value"] = loss.item()
        try:
            (res[f"{name}_s"],) = paired_times([call], repeats=1, warmup=1)  # after a warm-up (lazy kernels)
            q.grad = None
            res[f"{name}_mb"] = allocator_peak_mb(call)
            res[f"{name}_value"] = out["value"]
            grads[name] = q.grad.clone()
        except RuntimeError as e:  # out of memory is a result too
            res[f"{name}_mb"] = None
            res[f"{name}_error"] = str(e).splitlines()[0]
    if len(grads) == 2:
        res["max_grad_diff"] = float((grads["naive"] - grads["chunked"]).abs().max())
        res["memory_ratio"] = res["chunked_mb"] / res["naive_mb"]
    return res


def run_bench(out: str | Path, sizes: tuple[int, ...] = (64,), methods: tuple[str, ...] = tuple(METHODS),
              dense_sides: tuple[int, ...] = (32, 64, 128), batch: int = 16, repeats: int = 15) -> dict:
    """Run everything, write ``out.json`` and ``out.md``."""
    check_options(out, sizes, methods, batch, repeats)
    result = {"machine": machine(), "methods": [], "dense": []}
    for size in sizes:
        for name in methods:
            r = bench_method(name, size, batch, repeats)
            r["peak_rss_mb"] = peak_rss_mb(name, size, batch)
            result["methods"].append(r)
            print(f"{name:>10} {size}px: {r['images_per_s']:.0f} img/s, step/backbone {r['step_over_backbone']:.2f}, "
                  f"data rate / step rate {r['data_rate_over_step_rate']:.1f}x, peak RSS {r['peak_rss_mb']:.0f} MB", flush=True)
    for side in dense_sides:
        result["dense"].append(bench_dense(side))
        print(result["dense"][-1], flush=True)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2))
    out.with_suffix(".md").write_text(markdown(result))
    return result


def markdown(r: dict) -> str:
    m = r["machine"]
    lines = [f"machine: {m['platform']}, {m['cpus']} threads, torch {m['torch']}, CUDA {m['cuda']}", "",
             "| method | size | images/s | step / backbone | data rate / step rate | peak RSS MB |", "|---|---|---|---|---|---|"]
    for x in r["methods"]:
        lines.append(f"| {x['method']} | {x['size']} | {x['images_per_s']:.0f} | {x['step_over_backbone']:.2f} | "
                     f"{x['data_rate_over_step_rate']:.1f} | {x.get('peak_rss_mb', float('nan')):.0f} |")
    lines += ["", "| dense map | naive MB | chunked MB | chunked / naive | naive s | chunked s | |value diff| | "
              "max |grad diff| |", "|---|---|---|---|---|---|---|---|"]
    nan = float("nan")
    for d in r["dense"]:
        diff = abs(d.get("naive_value", nan) - d.get("chunked_value", nan))
        lines.append(f"| {d['side']}x{d['side']} | {d.get('naive_mb') or nan:.1f} | {d.get('chunked_mb') or nan:.1f} | "
                     f"{d.get('memory_ratio', nan):.3f} | {d.get('naive_s', nan):.3f} | {d.get('chunked_s', nan):.3f} | "
                     f"{diff:.1e} | {d.get('max_grad_diff', nan):.1e} |")
    return "\n".join(lines) + "\n"
