"""The benchmark runs and reports (its numbers are measured by `python -m medkit bench`, not asserted here)."""
from __future__ import annotations

from medkit.bench import bench_dense, bench_method, markdown


def test_bench_reports_every_measure():
    r = bench_method("med_moco", size=32, batch=12, repeats=1)
    for key in ("images_per_s", "step_over_backbone", "data_slices_per_s", "data_rate_over_step_rate"):
        assert r[key] > 0
    d = bench_dense(8)
    assert abs(d["naive_value"] - d["chunked_value"]) < 1e-4
    text = markdown({"machine": {"platform": "p", "cpus": 2, "torch": "t", "cuda": None},
                     "methods": [{**r, "peak_mb": 1.0}], "dense": [d]})
    assert "| med_moco | 32 |" in text and "8x8" in text
