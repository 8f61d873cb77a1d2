"""ISM: fast == naive == a plain per-variant loop; the split forward; attributions; controls."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from enformer_pytorch import Enformer
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import InputError
from tests.fakes import calibrate_, one_hot, tiny_hparams
from variformer.analysis import ism
from variformer.analysis.attributions import (
    gradient_x_input,
    matched_controls,
    screen_then_confirm,
    standardized_attribution,
)
from variformer.analysis.mutagenesis import _edited_towers, edit_effects, window_edits
from variformer.model import Variformer
from variformer.predict import CenterBins

L = 1024


@pytest.fixture(scope="module")
def tiny() -> Variformer:
    torch.manual_seed(0)
    return calibrate_(Variformer.from_hparams(**tiny_hparams(), train_batchnorm=True), L)


@pytest.fixture(scope="module")
def wrapped_enformer() -> CenterBins:
    torch.manual_seed(1)
    enf = Enformer.from_hparams(
        dim=48, depth=1, heads=2, attn_dim_key=8, dim_divisible_by=4, output_heads={"human": 7}
    )
    enf.set_target_length(-1)
    calibrate_(enf, L)
    return CenterBins(enf, head="human", track=5).eval()


def plain_loop(model, seq: np.ndarray, variants: pd.DataFrame) -> np.ndarray:
    """The independent truth: model(edited) - model(seq), one variant at a time."""
    eye = np.eye(4, dtype=np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(seq[None]))[0].item()
        out = []
        for p, a in zip(variants["pos0"], variants["alt"]):
            x = seq.copy()
            x[p] = eye["ACGT".index(a)]
            out.append(model(torch.from_numpy(x[None]))[0].item() - ref)
    return np.array(out)


def snvs(seq: np.ndarray, positions, seed: int = 0) -> pd.DataFrame:
    """One non-reference ALT per position (the argmax base of the background is 'REF')."""
    rng = np.random.default_rng(seed)
    positions = np.asarray(positions)
    ref = seq[positions].argmax(axis=1)
    alt = (ref + rng.integers(1, 4, len(positions))) % 4
    return pd.DataFrame({"pos0": positions, "alt": [("ACGT")[a] for a in alt]})


# window edges, adjacent SNVs (also across a pooling pair and a bin border), the TSS bin
EDGE_POSITIONS = [0, 1, 2, 7, 8, 127, 128, 511, 512, 513, 640, 641, L - 9, L - 8, L - 2, L - 1]


def personal(seq: np.ndarray, positions, seed: int) -> np.ndarray:
    """An averaged one-hot: heterozygous (0.5/0.5) at some positions, homozygous ALT at others."""
    rng = np.random.default_rng(seed)
    x = seq.copy()
    eye = np.eye(4, dtype=np.float32)
    for p in positions:
        alt = eye[(seq[p].argmax() + rng.integers(1, 4)) % 4]
        x[p] = 0.5 * (seq[p] + alt) if rng.random() < 0.6 else alt
    return x


def test_split_forward_equals_forward(tiny, wrapped_enformer):
    x = torch.from_numpy(one_hot(3, L, 5))
    with torch.no_grad():
        for model in (tiny, wrapped_enformer):
            full = model(x)
            split = model.forward_from_tower(model.forward_tower(x))
            assert split.shape == (3,)
            torch.testing.assert_close(split, full, rtol=1e-5, atol=1e-6)
    assert [s.radius for s in tiny.local_stages()] == [7] + [2] * 6
    assert tiny.forward_tower(x).shape == (3, 48, L // 128)


def test_spliced_towers_equal_full_recompute_at_edges_and_adjacent_snvs(tiny):
    """The strongest check of the slice arithmetic: every tower bin, not just the read-out."""
    seq = one_hot(1, L, 2)[0]
    var = snvs(seq, EDGE_POSITIONS)
    eye = np.eye(4, dtype=np.float32)
    with torch.no_grad():
        towers = list(
            _edited_towers(
                tiny,
                seq,
                var["pos0"].to_numpy(),
                eye[["ACGT".index(a) for a in var["alt"]]][:, None, :],
                batch_size=5,
                dev=torch.device("cpu"),
            )
        )
        got = torch.cat([t for _, t in towers[1:]])
        edited = np.repeat(seq[None], len(var), axis=0)
        edited[np.arange(len(var)), var["pos0"]] = eye[["ACGT".index(a) for a in var["alt"]]]
        want = tiny.forward_tower(torch.from_numpy(edited))
        ref = tiny.forward_tower(torch.from_numpy(seq[None]))
    torch.testing.assert_close(towers[0][1], ref)
    scale = (want - ref).abs().amax()
    assert scale > 1e-3  # the edits do change the tower
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5 * float(want.abs().max()))


def test_spliced_towers_equal_full_recompute_for_multi_row_edits(tiny):
    """Edits of many rows (MNPs; the shifted stretch of an indel), mixed widths in one batch
    (padded to the widest with the base's own rows), at both edges: every tower bin."""
    seq = one_hot(1, L, 12)[0]
    rng = np.random.default_rng(13)
    spans = [(0, 1), (0, 7), (3, 2), (L - 5, 5), (L - 1, 1), (L // 2 - 3, 9), (100, 300),
             (L // 2, L // 2), (0, L // 2), (250, 1), (700, 64), (L - 400, 400), (511, 2)]  # fmt: skip
    starts = np.array([s for s, _ in spans])
    values = [one_hot(1, w, int(rng.integers(1000)))[0] for _, w in spans]
    edited = np.repeat(seq[None], len(spans), axis=0)
    for j, (s, w) in enumerate(spans):
        edited[j, s : s + w] = values[j]
    with torch.no_grad():
        for order in (np.arange(len(spans)), np.argsort([w for _, w in spans], kind="stable")):
            towers = list(
                _edited_towers(
                    tiny,
                    seq,
                    starts[order],
                    [values[i] for i in order],
                    batch_size=4,
                    dev=torch.device("cpu"),
                )
            )
            got = torch.cat([t for _, t in towers[1:]])
            want = tiny.forward_tower(torch.from_numpy(edited[order]))
            ref = tiny.forward_tower(torch.from_numpy(seq[None]))
            assert (want - ref).abs().amax() > 1e-3
            torch.testing.assert_close(got, want, rtol=0, atol=1e-5 * float(want.abs().max()))


def test_edit_effects_fast_equals_plain_forwards_and_identity_is_zero(tiny):
    seq = one_hot(1, L, 14)[0]
    rng = np.random.default_rng(15)
    spans = [(L // 2 - 4, 4), (L // 2 + 10, 200), (0, 30), (L - 100, 100), (L // 2 - 300, 700)]
    windows = []
    for s, w in spans:
        win = seq.copy()
        win[s : s + w] = one_hot(1, w, int(rng.integers(1000)))[0]
        windows.append(win)
    windows.append(seq.copy())  # an identity edit
    starts, values = window_edits(seq, windows)
    assert [len(v) for v in values][-1] == 0
    with torch.no_grad():
        plain = tiny(torch.from_numpy(np.stack([seq, *windows]))).double().numpy()
    truth = plain[1:] - plain[0]
    fast = edit_effects(tiny, seq, starts, values, batch_size=2, device="cpu")
    naive = edit_effects(tiny, seq, starts, values, method="naive", batch_size=3, device="cpu")
    scale = np.abs(truth).max()
    assert scale > 1e-3
    assert fast[-1] == 0.0 and naive[-1] == 0.0
    np.testing.assert_allclose(fast, truth, rtol=0, atol=1e-4 * scale)
    np.testing.assert_allclose(naive, truth, rtol=0, atol=1e-4 * scale)
    with pytest.raises(InputError, match="inside the"):
        edit_effects(tiny, seq, [L - 1], [values[0]])


@pytest.mark.parametrize("background", ["reference", "personal"])
def test_fast_equals_naive_equals_plain_loop(tiny, background):
    seq = one_hot(1, L, 3)[0]
    rng = np.random.default_rng(4)
    positions = np.unique(np.r_[EDGE_POSITIONS[::2], rng.integers(L // 2 - 200, L // 2 + 200, 6)])
    if background == "personal":
        seq = personal(seq, rng.choice(positions, 12, replace=False), 5)
    var = snvs(seq, positions, seed=6)
    fast = ism(tiny, seq, var, method="fast", batch_size=4, device="cpu")
    naive = ism(tiny, seq, var, method="naive", batch_size=7, device="cpu")
    truth = plain_loop(tiny, seq, var)
    scale = np.abs(truth).max()
    assert fast.dtype == np.float32 and fast.shape == (len(var),)
    # real effects (far from the TSS a tiny model's effects round to 0 in fp32; the tower test
    # above checks the edges bin by bin)
    assert scale > 1e-3 and (np.abs(truth) > 1e-2 * scale).mean() > 0.5
    np.testing.assert_allclose(naive, truth, rtol=0, atol=1e-4 * scale)
    np.testing.assert_allclose(fast, truth, rtol=0, atol=1e-4 * scale)
    # ranking (what HSVs use) is the same
    assert np.argmax(np.abs(fast)) == np.argmax(np.abs(truth))


def test_identity_edits_score_exactly_zero_and_skip_the_forward(tiny):
    seq = one_hot(1, L, 7)[0]
    het = personal(seq, [100], 0)
    het[100] = 0.5 * (seq[100] + np.roll(seq[100], 1))  # A/C-style het site
    ref_base = "ACGT"[seq[5].argmax()]
    var = pd.DataFrame({"pos0": [5, 100, 512], "alt": [ref_base, "ACGT"[seq[100].argmax()], "a"]})
    for method in ("fast", "naive"):
        got = ism(tiny, het, var, method=method, device="cpu")
        assert got[0] == 0.0  # identity: the background already has this base
        assert got[1] != 0.0  # the het site becomes homozygous: a real edit
    # lower-case ALT is accepted; all-identity input needs no model at all
    only_identity = pd.DataFrame({"pos0": [5], "alt": [ref_base.lower()]})
    np.testing.assert_array_equal(ism(torch.nn.Identity(), seq, only_identity), [0.0])


def test_centerbins_wrapped_enformer_fast_equals_plain_loop(wrapped_enformer):
    seq = one_hot(1, L, 8)[0]
    var = snvs(seq, [0, 3, 380, 500, 511, 512, 513, 600, L - 1], seed=1)
    fast = ism(wrapped_enformer, seq, var, batch_size=4, device="cpu")
    truth = plain_loop(wrapped_enformer, seq, var)
    scale = np.abs(truth).max()
    assert scale > 1e-4
    np.testing.assert_allclose(fast, truth, rtol=0, atol=1e-4 * scale)


def test_centerbins_wrapped_enformer_multi_row_edits_equal_plain_forwards(wrapped_enformer):
    """Pre-trained Enformer's ISM of indels (its split forward) takes the same fast path."""
    seq = one_hot(1, L, 16)[0]
    spans = [(0, 40), (L // 2 - 2, 5), (L // 2 + 3, 300), (L - 64, 64)]
    starts = np.array([s for s, _ in spans])
    values = [one_hot(1, w, 17 + i)[0] for i, (_, w) in enumerate(spans)]
    edited = np.repeat(seq[None], len(spans), axis=0)
    for j, (s, w) in enumerate(spans):
        edited[j, s : s + w] = values[j]
    with torch.no_grad():
        plain = wrapped_enformer(torch.from_numpy(np.concatenate([seq[None], edited])))
    truth = (plain[1:] - plain[0]).double().numpy()
    fast = edit_effects(wrapped_enformer, seq, starts, values, batch_size=3, device="cpu")
    scale = np.abs(truth).max()
    assert scale > 1e-4
    np.testing.assert_allclose(fast, truth, rtol=0, atol=1e-4 * scale)


def test_larger_model_fast_equals_naive():
    torch.manual_seed(3)
    length = 2048
    model = calibrate_(
        Variformer.from_hparams(
            dim=96, depth=1, heads=4, attn_dim_key=16, dim_divisible_by=8, train_batchnorm=True
        ),
        length,
    )
    seq = personal(one_hot(1, length, 9)[0], [10, 1000, 1024, 2000], 3)
    var = snvs(seq, [0, 1, 1023, 1024, 1025, 900, 1100, length - 1], seed=2)
    fast = ism(model, seq, var, batch_size=3, device="cpu")
    naive = ism(model, seq, var, method="naive", batch_size=8, device="cpu")
    scale = np.abs(naive).max()
    assert scale > 1e-4
    np.testing.assert_allclose(fast, naive, rtol=0, atol=1e-4 * scale)


def test_bad_input_is_one_clear_error(tiny):
    seq = one_hot(1, L, 0)[0]
    with pytest.raises(InputError, match="outside the 1024-bp window"):
        ism(tiny, seq, pd.DataFrame({"pos0": [L], "alt": ["A"]}))
    with pytest.raises(InputError, match="not one of A, C, G, T"):
        ism(tiny, seq, pd.DataFrame({"pos0": [3], "alt": ["AT"]}))
    with pytest.raises(InputError, match="lack column"):
        ism(tiny, seq, pd.DataFrame({"pos": [3], "alt": ["A"]}))
    with pytest.raises(InputError, match="method must be"):
        ism(tiny, seq, pd.DataFrame({"pos0": [3], "alt": ["A"]}), method="quick")
    plain = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(1), torch.nn.Flatten(0))
    var = snvs(seq, [3])
    with pytest.raises(InputError, match="use method='naive'"):
        ism(plain, seq, var, method="fast")
    assert ism(plain, seq, var, method="naive").shape == (1,)


# ------------------------------------------------------------------------------------------
# attributions


def test_gradient_x_input_matches_finite_differences():
    torch.manual_seed(5)
    model = calibrate_(Variformer.from_hparams(**tiny_hparams(), train_batchnorm=True), 512)
    model.double()
    X = one_hot(2, 512, 11).astype(np.float64)
    gxi = gradient_x_input(model, X, device="cpu")
    assert gxi.shape == X.shape
    assert np.all(gxi[X == 0] == 0)  # x multiplies: zero where the base is absent
    eps = 1e-6
    with torch.no_grad():
        for n, p in [(0, 256), (1, 200), (0, 300)]:
            b = X[n, p].argmax()
            up, down = X[n : n + 1].copy(), X[n : n + 1].copy()
            up[0, p, b] += eps
            down[0, p, b] -= eps
            fd = (model(torch.from_numpy(up)) - model(torch.from_numpy(down))).item() / (2 * eps)
            assert gxi[n, p, b] == pytest.approx(fd, rel=1e-4, abs=1e-9)


def test_gradients_flow_through_a_frozen_trunk():
    torch.manual_seed(6)
    model = Variformer.from_hparams(**tiny_hparams(), freeze_trunk=True, train_batchnorm=True)
    calibrate_(model, 512)
    gxi = gradient_x_input(model, one_hot(1, 512, 1), device="cpu")
    assert np.abs(gxi).max() > 0


def test_standardized_attribution_is_the_z_scored_max_abs():
    rng = np.random.default_rng(0)
    g = rng.normal(size=(3, 50, 4))
    z = standardized_attribution(g)
    expected = np.abs(g.mean(0)).max(1)
    expected = (expected - expected.mean()) / expected.std()
    np.testing.assert_allclose(z, expected)
    assert z.mean() == pytest.approx(0, abs=1e-12) and z.std() == pytest.approx(1)
    np.testing.assert_array_equal(standardized_attribution(np.ones((5, 4))), np.zeros(5))


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(-6000, 6000), st.floats(0, 0.5)),
        min_size=1,
        max_size=20,
    ),
    st.data(),
)
def test_matched_controls_equal_a_brute_force_scan(rows, data):
    variants = pd.DataFrame(rows, columns=["tss_distance", "maf"])
    targets = data.draw(st.lists(st.sampled_from(range(len(rows))), max_size=5, unique=True))
    got = matched_controls(variants, np.array(targets, dtype=int), max_maf_difference=0.05)
    want = [
        (t, c)
        for t in sorted(targets)
        for c in range(len(rows))
        if c not in targets
        and abs(rows[t][0] - rows[c][0]) <= 2500
        and abs(rows[t][1] - rows[c][1]) <= 0.05
    ]
    assert sorted(zip(got["target"], got["control"])) == sorted(want)


def test_screen_then_confirm(tiny):
    seq = one_hot(1, L, 12)[0]
    var = snvs(seq, np.random.default_rng(1).choice(np.arange(312, 712), 24, replace=False), seed=3)
    full = ism(tiny, seq, var, device="cpu")
    res = screen_then_confirm(tiny, seq, var, k=3, n_confirm=8, device="cpu")
    assert len(res.confirmed) == 8 and len(res.top) == 3
    np.testing.assert_allclose(res.scores[res.confirmed], full[res.confirmed], atol=1e-6)
    assert np.isnan(np.delete(res.scores, res.confirmed)).all()
    # the first-order screen tracks the exact effects
    assert np.corrcoef(res.screen, full)[0, 1] > 0.5
    # confirming everything recovers full ISM's top k exactly
    everything = screen_then_confirm(tiny, seq, var, k=3, n_confirm=len(var), device="cpu")
    np.testing.assert_array_equal(everything.top, np.argsort(-np.abs(full), kind="stable")[:3])
