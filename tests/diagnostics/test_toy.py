import pytest

from medkit.diagnostics.toy import ToyConfig, toy_collapse
from medkit.errors import MedkitError


def test_toy_collapses_with_the_knob_up_and_not_down():
    low, high = toy_collapse(noise=0.1), toy_collapse(noise=3.0)
    assert high.erank_cov < 0.7 * low.erank_cov
    assert high.collapsed >= 0.4 and low.collapsed <= 0.1
    assert high.spectrum.shape == (16,) and high.losses[-1] < high.losses[0]


def test_the_config_sets_how_many_dimensions_collapse():
    """Strong noise on k = 2 of n = 8 inputs: exactly k of the d = 8 singular values vanish
    (collapsed fraction k / d = 0.25), none with weak noise."""
    cfg = ToyConfig(n=8, d=8, k=2)
    low, high = toy_collapse(0.1, cfg), toy_collapse(3.0, cfg)
    assert high.spectrum.shape == (8,) and len(high.losses) == cfg.steps
    assert high.collapsed == pytest.approx(2 / 8) and low.collapsed == 0.0


@pytest.mark.parametrize("over,name", [({"k": 17}, "k"), ({"batch": 1}, "batch"), ({"lr": 0.0}, "lr"),
                                       ({"steps": 0}, "steps")])
def test_a_bad_toy_config_names_the_parameter(over, name):
    with pytest.raises(MedkitError, match=f"^{name} must"):
        ToyConfig(**over)
