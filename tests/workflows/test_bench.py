"""The benchmark runs and reports (its numbers are measured by `python -m medkit bench`, not asserted here)."""
from __future__ import annotations

import time

import torch

from medkit.workflows.bench import allocator_peak_mb, bench_dense, bench_method, markdown, paired_times


def test_bench_reports_every_measure():
    r = bench_method("med_moco", size=32, batch=12, repeats=1)
    for key in ("images_per_s", "step_over_backbone", "data_slices_per_s", "data_rate_over_step_rate"):
        assert r[key] > 0
    d = bench_dense(8, chunk=16)
    assert abs(d["naive_value"] - d["chunked_value"]) < 1e-4 and d["max_grad_diff"] < 1e-5
    text = markdown({"machine": {"platform": "p", "cpus": 2, "torch": "t", "cuda": None},
                     "methods": [r], "dense": [d]})
    assert "| med_moco | 32 |" in text and "8x8" in text


def test_allocator_peak_counts_what_a_call_holds_at_once():
    def two_held():  # 2 x 4 MB alive together, then freed
        a = torch.ones(1024, 1024)
        b = torch.ones(1024, 1024)
        return float(a[0, 0] + b[0, 0])

    def one_at_a_time():  # 4 MB, freed before the next 4 MB
        for _ in range(2):
            float(torch.ones(1024, 1024)[0, 0])
    assert 7.9 < allocator_peak_mb(two_held) < 8.5
    assert 3.9 < allocator_peak_mb(one_at_a_time) < 4.5


def testpaired_times_are_wall_times_of_each_function():
    """The Timer-based alternation returns each function's own median wall time, in order."""
    short, long = paired_times([lambda: time.sleep(0.01), lambda: time.sleep(0.03)], repeats=3, warmup=0)
    assert 0.01 <= short < long and long >= 0.03
