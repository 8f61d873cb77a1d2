"""variformer_loss / pairwise_difference_loss against hand-computed values and a brute-force loop."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from variformer.loss import pairwise_difference_loss, variformer_loss

# pred - target = e = [1, 0, 2]: MSE = (1 + 0 + 4) / 3 = 5/3;
# pairs (0,1): e0-e1 = 1, (0,2): -1, (1,2): -2 -> squares 1, 1, 4 -> mean 2.
PRED = [1.0, 2.0, 5.0]
TARGET = [0.0, 2.0, 3.0]


def t(values, dtype=torch.float32):
    return torch.tensor(values, dtype=dtype)


@pytest.mark.parametrize(
    ("alpha", "expected"), [(0.0, 2.0), (0.5, 0.5 * 5 / 3 + 0.5 * 2.0), (1.0, 5 / 3)]
)
def test_hand_computed_three_people(alpha, expected):
    loss = variformer_loss(t(PRED), t(TARGET), alpha=alpha)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_hand_computed_two_people_default_alpha():
    # e = [2, -1]: MSE = (4 + 1) / 2 = 2.5; one pair: (2 - (-1))^2 = 9; 0.5 * 2.5 + 0.5 * 9 = 5.75
    assert pairwise_difference_loss(t([3.0, 1.0]), t([1.0, 2.0])).item() == pytest.approx(9.0)
    assert variformer_loss(t([3.0, 1.0]), t([1.0, 2.0])).item() == pytest.approx(5.75)


def test_batch_of_one_has_zero_pairwise_term_and_still_backpropagates():
    pred = t([1.5]).requires_grad_()
    loss = pairwise_difference_loss(pred, t([0.5]))
    assert loss.item() == 0.0
    loss.backward()
    assert pred.grad is not None and pred.grad.item() == 0.0
    # alpha = 0.5 with one person is just half the squared error: 0.5 * 1.0
    assert variformer_loss(t([1.5]), t([0.5])).item() == pytest.approx(0.5)


def brute_force_pairwise(pred, target):
    pairs = list(itertools.combinations(range(len(pred)), 2))
    return sum(((pred[i] - pred[j]) - (target[i] - target[j])) ** 2 for i, j in pairs) / len(pairs)


finite = st.floats(min_value=-100, max_value=100, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(min_value=2, max_value=40).flatmap(
        lambda n: st.tuples(
            st.lists(finite, min_size=n, max_size=n), st.lists(finite, min_size=n, max_size=n)
        )
    ),
    st.sampled_from([0.0, 0.25, 0.5, 1.0]),
)
def test_matches_brute_force_double_loop(pred_target, alpha):
    pred, target = pred_target
    pred64, target64 = np.array(pred), np.array(target)
    expected_pair = brute_force_pairwise(pred64, target64)
    expected = alpha * np.mean((pred64 - target64) ** 2) + (1 - alpha) * expected_pair
    got_pair = pairwise_difference_loss(t(pred), t(target)).item()
    got = variformer_loss(t(pred), t(target), alpha=alpha).item()
    # float32 arithmetic on values up to 100 (squares up to 4e4)
    assert got_pair == pytest.approx(expected_pair, rel=1e-4, abs=1e-2)
    assert got == pytest.approx(expected, rel=1e-4, abs=1e-2)


@settings(max_examples=30, deadline=None)
@given(st.lists(finite, min_size=2, max_size=30), st.floats(min_value=-50, max_value=50))
def test_pairwise_term_ignores_a_common_shift_but_mse_does_not(values, shift):
    target = t(values)
    pred = target + 0.3 * torch.arange(len(values), dtype=torch.float32)
    base = pairwise_difference_loss(pred, target).item()
    assert pairwise_difference_loss(pred + shift, target).item() == pytest.approx(
        base, rel=1e-3, abs=1e-2
    )
    # closed form: mean over pairs of (e_i - e_j)^2 = 2n/(n-1) * population variance of e
    e = (pred - target).double().numpy()
    assert base == pytest.approx(2 * len(e) / (len(e) - 1) * e.var(), rel=1e-4, abs=1e-4)


def test_gradient_matches_analytic_formula():
    # d/dp_k mean_{i<j}(e_i - e_j)^2 = (2 / P) * (n e_k - sum(e)), P = n(n-1)/2 pairs
    pred = t([0.3, -1.2, 2.0, 0.7]).requires_grad_()
    target = t([1.0, 0.0, 0.5, -0.5])
    pairwise_difference_loss(pred, target).backward()
    e = (pred.detach() - target).numpy()
    n = len(e)
    expected = 2 / (n * (n - 1) / 2) * (n * e - e.sum())
    np.testing.assert_allclose(pred.grad.numpy(), expected, rtol=1e-5)


def test_bf16_predictions_are_compared_in_float32():
    pred_bf16 = t([100.0, 100.5, 101.0], dtype=torch.bfloat16)  # exactly representable
    target = t([100.25, 100.5, 100.75])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = variformer_loss(pred_bf16, target)
    # e = [-0.25, 0, 0.25]: MSE = 0.125 / 3; pairs 0.25^2, 0.5^2, 0.25^2 -> 0.375 / 3
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(0.5 * 0.125 / 3 + 0.5 * 0.375 / 3, rel=1e-6)


def test_rejects_mismatched_shapes_and_bad_alpha():
    with pytest.raises(ValueError, match="shape"):
        variformer_loss(torch.zeros(4), torch.zeros(4, 1))
    with pytest.raises(ValueError, match="alpha"):
        variformer_loss(torch.zeros(4), torch.zeros(4), alpha=1.5)
