"""environment.yml and requirements.txt must describe the same stack."""
from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _reqs() -> list[str]:
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    return [ln.split("#")[0].strip() for ln in lines if ln.split("#")[0].strip()]


def test_environment_installs_the_pip_requirements():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    conda = [d for d in deps if isinstance(d, str)]
    pip = next(d["pip"] for d in deps if isinstance(d, dict))
    # conda brings only Python and pip (conda channels are not reachable on these machines)
    assert sorted(d.split("=")[0] for d in conda) == ["pip", "python"]
    assert "-r requirements.txt" in pip and "-e ." in pip


def test_stack_pins():
    reqs = _reqs()
    assert "torch==2.13.0" in reqs and "monai==1.6.1" in reqs
    assert "itkwidgets[lab]==1.0a55" in reqs and "ngff-zarr<0.33" in reqs
    assert not any(r.startswith("torchvision") for r in reqs)
