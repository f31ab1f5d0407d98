import pytest

from retention.uplift import retention_uplift


@pytest.mark.smoke
def test_uplift_matches_a_worked_example():
    # 300 of 1,000 treated retained against 250 of 1,000 in control:
    # se = sqrt(.3 * .7 / 1000 + .25 * .75 / 1000) = 0.0199374, z = 1.959964,
    # so the 95% interval is 0.05 -/+ 0.0390763 = [0.0109237, 0.0890763].
    result = retention_uplift(
        treated=1000, treated_retained=300, control=1000, control_retained=250
    )
    assert result.difference == pytest.approx(0.05)
    assert result.ci_low == pytest.approx(0.0109237, abs=1e-6)
    assert result.ci_high == pytest.approx(0.0890763, abs=1e-6)
    assert not result.too_small and result.verdict.startswith("treatment retains more")


def test_an_interval_across_zero_and_a_tiny_sample_say_so():
    unclear = retention_uplift(treated=400, treated_retained=100, control=400, control_retained=95)
    assert unclear.ci_low < 0 < unclear.ci_high and "no clear difference" in unclear.verdict
    tiny = retention_uplift(treated=12, treated_retained=6, control=10, control_retained=2)
    assert tiny.too_small and "too few customers" in tiny.verdict
    empty = retention_uplift(treated=10, treated_retained=1, control=0, control_retained=0)
    assert empty.difference is None and empty.too_small
