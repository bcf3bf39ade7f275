"""The benchmark runs and reports (its numbers are measured by `python -m medkit bench`, not asserted here)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

import medkit.workflows.bench as bench
from medkit.workflows.bench import allocator_peak_mb, bench_dense, bench_method, markdown, paired_times


def _timer_on(clock, cost=lambda fn: 0.0):
    """torch's Timer on a fake clock (``clock[0]``, seconds): ``timeit(n)`` runs ``stmt`` n times, each call
    advancing the clock by ``cost(fn)`` (plus what ``fn`` itself adds), and returns the mean of the n calls."""
    class FakeTimer:
        def __init__(self, stmt="pass", globals=None, **_):
            self.stmt, self.globals = stmt, globals or {}

        def timeit(self, number=1):
            t0 = clock[0]
            for _ in range(number):
                eval(self.stmt, self.globals)
                clock[0] += cost(self.globals["fn"])
            return SimpleNamespace(mean=(clock[0] - t0) / number)
    return FakeTimer


def test_bench_reports_every_measure(monkeypatch):
    # a step of 0.5 s, a backbone step of 0.25 s, a data batch of 0.125 s: every rate follows by hand
    seconds = {"step": 0.5, "backbone": 0.25, "pipeline": 0.125}
    with monkeypatch.context() as mp:
        mp.setattr(bench, "Timer", _timer_on([0.0], lambda fn: seconds[fn.__name__]))
        r = bench_method("med_moco", size=32, batch=12, repeats=1)
    assert {k: r[k] for k in ("step_s", "backbone_s", "images_per_s", "step_over_backbone", "data_slices_per_s",
                              "data_rate_over_step_rate")} == pytest.approx(
        {"step_s": 0.5, "backbone_s": 0.25, "images_per_s": 12 / 0.5, "step_over_backbone": 2.0,
         "data_slices_per_s": 12 / 0.125, "data_rate_over_step_rate": 4.0})
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


def testpaired_times_are_wall_times_of_each_function(monkeypatch):
    """The Timer-based alternation returns each function's own median time, in order, after the warm-up
    calls: on a fake clock that each call advances by a known cost (no sleeping)."""
    clock, calls = [0.0], []
    costs = {"a": [0.01] * 5, "b": [0.03, 0.03, 0.5, 0.03, 0.03]}  # b's first timed call: a hiccup, not its time

    def fn(name):
        def call():
            clock[0] += costs[name][calls.count(name)]
            calls.append(name)
        return call
    monkeypatch.setattr(bench, "Timer", _timer_on(clock))
    assert paired_times([fn("a"), fn("b")], repeats=3, warmup=2) == pytest.approx([0.01, 0.03], abs=1e-12)
    assert calls == ["a", "a", "b", "b"] + ["a", "b"] * 3  # warm-up, then one call of each per round
