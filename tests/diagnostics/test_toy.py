from medkit.diagnostics.toy import toy_collapse


def test_toy_collapses_with_the_knob_up_and_not_down():
    low, high = toy_collapse(noise=0.1), toy_collapse(noise=3.0)
    assert high.erank_cov < 0.7 * low.erank_cov
    assert high.collapsed >= 0.4 and low.collapsed <= 0.1
    assert high.spectrum.shape == (16,) and high.losses[-1] < high.losses[0]
