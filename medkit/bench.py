"""``python -m medkit bench``: how much science fits in the machine.

Per method and image size: training-step throughput (images/s), the ratio of a method's step
to the backbone's own forward + backward over the same two views (the overhead of views, heads
and loss), peak memory of a step (resident set of a fresh process), and the data pipeline's rate
(slices/s through batch sampling and the method's two-view augmentation) against the rate the
step consumes them. Also the dense losses: naive against chunked, memory and time, for 32 x 32,
64 x 64 and 128 x 128 maps. Writes JSON and a markdown table and prints the machine.

Timings are medians over repeated steps after a warm-up; memory is measured in a subprocess per
case so that one case's allocations do not hide another's.
"""
from __future__ import annotations

import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from medkit.data.views import make_views
from medkit.methods import METHODS, build_method
from medkit.methods.base import Batch


def machine() -> dict:
    return {"python": platform.python_version(), "platform": platform.platform(), "processor": platform.processor(),
            "cpus": torch.get_num_threads(), "torch": torch.__version__,
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def _median_time(fn, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_method(name: str, size: int = 64, batch: int = 16, repeats: int = 5) -> dict:
    """Step time, backbone time and data-pipeline rate of one method (no memory: see peak_memory)."""
    torch.manual_seed(0)
    m = build_method(name, {"queue": 1024} if name in ("moco_v2", "med_moco") else {})
    m.train()
    params = [p for p in m.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
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
        feats = [m.net.features(v) if dense else {"h": m.net.encode(v)[-1]} for v in (views.x1, views.x2)]
        loss = sum(next(reversed(f.values())).float().mean() for f in feats)
        opt.zero_grad(set_to_none=True)
        loss.backward()

    t_step = _median_time(step, repeats)
    t_backbone = _median_time(backbone, repeats)
    pool = torch.rand(512, 1, size, size)

    def pipeline():
        idx = torch.randint(len(pool), (batch,), generator=g)
        make_views(pool[idx], *m.views, g)

    t_data = _median_time(pipeline, repeats)
    return {"method": name, "size": size, "batch": batch, "step_s": t_step, "images_per_s": batch / t_step,
            "backbone_s": t_backbone, "step_over_backbone": t_step / t_backbone,
            "data_slices_per_s": batch / t_data, "data_rate_over_step_rate": t_step / t_data}


_MEM = """
import resource, sys, json, torch
sys.path.insert(0, {root!r})
{setup}
extra = {{}}
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
{run}
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"peak_mb": after / 1024, "delta_mb": (after - before) / 1024, **extra}}))
"""


def peak_memory(setup: str, run: str) -> dict:
    """Peak resident memory (MB) of ``run`` in a fresh interpreter, after ``setup``."""
    root = str(Path(__file__).resolve().parents[1])
    code = _MEM.format(root=root, setup=setup, run=run)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_dense(side: int, channels: int = 32, chunk: int = 1024) -> dict:
    """Dense InfoNCE (IDEAL) naive vs chunked on a (1, C, side, side) map: peak memory of one
    forward + backward in a fresh process, its time, and the loss value (they must agree)."""
    setup = ("from medkit.losses.dense import dense_info_nce\n"
             "from medkit.losses.chunked import dense_info_nce_chunked\n"
             f"torch.manual_seed(0); q = torch.randn(1, {channels}, {side}, {side}, requires_grad=True); "
             f"k = torch.randn(1, {channels}, {side}, {side})\n"
             "w = torch.randn(1, 4, 4, 4, requires_grad=True)\n"  # warm-up: lazy imports and kernels
             f"dense_info_nce(w, w.detach()).backward(); dense_info_nce_chunked(w, w.detach(), chunk=8).backward()")
    res = {"side": side, "positions": side * side}
    for name, call in (("naive", "dense_info_nce(q, k)"), ("chunked", f"dense_info_nce_chunked(q, k, chunk={chunk})")):
        run = ("import time; t = time.perf_counter()\n"
               f"loss = {call}; loss.backward()\n"
               "extra = {'seconds': time.perf_counter() - t, 'value': float(loss)}")
        try:
            mem = peak_memory(setup, run)
            res.update({f"{name}_delta_mb": mem["delta_mb"], f"{name}_s": mem["seconds"], f"{name}_value": mem["value"]})
        except subprocess.CalledProcessError as e:  # out of memory is a result too
            res[f"{name}_delta_mb"] = None
            res[f"{name}_error"] = ((e.stderr or "").strip().splitlines() or ["failed"])[-1]
    return res


def run_bench(out: str | Path, sizes: tuple[int, ...] = (64,), methods: tuple[str, ...] = tuple(METHODS),
              dense_sides: tuple[int, ...] = (32, 64, 128), batch: int = 16) -> dict:
    """Run everything, write ``out.json`` and ``out.md``."""
    result = {"machine": machine(), "methods": [], "dense": []}
    for size in sizes:
        for name in methods:
            r = bench_method(name, size, batch)
            mem = peak_memory("from medkit.bench import bench_method", f"bench_method({name!r}, {size}, {batch}, repeats=1)")
            r["peak_mb"] = mem["peak_mb"]
            result["methods"].append(r)
            print(f"{name:>10} {size}px: {r['images_per_s']:.0f} img/s, step/backbone {r['step_over_backbone']:.2f}, "
                  f"data rate / step rate {r['data_rate_over_step_rate']:.1f}x, peak {r['peak_mb']:.0f} MB", flush=True)
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
             "| method | size | images/s | step / backbone | data rate / step rate | peak MB |", "|---|---|---|---|---|---|"]
    for x in r["methods"]:
        lines.append(f"| {x['method']} | {x['size']} | {x['images_per_s']:.0f} | {x['step_over_backbone']:.2f} | "
                     f"{x['data_rate_over_step_rate']:.1f} | {x['peak_mb']:.0f} |")
    lines += ["", "| dense map | naive MB | chunked MB | naive s | chunked s | same value |", "|---|---|---|---|---|---|"]
    for d in r["dense"]:
        same = (abs(d.get("naive_value", float("nan")) - d.get("chunked_value", float("nan"))) < 1e-4
                if "naive_value" in d and "chunked_value" in d else "n/a")
        lines.append(f"| {d['side']}x{d['side']} | {d.get('naive_delta_mb')} | {d.get('chunked_delta_mb')} | "
                     f"{d.get('naive_s', float('nan')):.3f} | {d.get('chunked_s', float('nan')):.3f} | {same} |")
    return "\n".join(lines) + "\n"
