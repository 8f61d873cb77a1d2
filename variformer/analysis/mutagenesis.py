"""In-silico mutagenesis (ISM) of observed SNVs: exact, and several times faster than naive.

The paper (Methods, "Driver analysis and in silico mutagenesis") scores each observed SNV of a
gene's window as prediction(ALT placed alone into the window) - prediction(window). Two ways:

- ``method="naive"``: one plain forward per variant through :func:`variformer.predict.predict`,
  batched. The reference implementation.
- ``method="fast"``: the same numbers. In eval mode everything before Enformer's transformer is
  local (stride-1 convolutions, BatchNorm on running statistics, 2-wide attention pooling), so
  one SNV changes only a few of the bins that enter the transformer. The window's activations
  are cached at every local stage once; per variant only a short slice around the edit is
  recomputed (wide enough for each stage's receptive field), spliced into the cached tower
  output, and the transformer and head run on that. The per-bin final block and head run for
  the read-out bins only. (fastISM, Nair et al. 2022, does this for the convolutions; here the
  transformer bounds the gain.)

The same engine scores any edit of a stretch of rows (:func:`edit_effects`): an MNP, or an
indel applied and the window re-anchored at the TSS (:func:`window_edits` finds the stretch that
changed: the shifted part between the indel and the window's far end). The fast path widens
each stage's recomputed slice by the edit's width, so it is exact for any width; it pays off
while the stretch is short (an indel far from the TSS), and edits wider than
:data:`FAST_SPAN_LIMIT` of the window take a plain forward.

The fast path needs the split forward that :class:`variformer.Variformer` and
:class:`variformer.predict.CenterBins` (around an Enformer) provide: ``local_stages()``,
``forward_tower(x)`` and ``forward_from_tower(h)``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from core.errors import InputError
from variformer.predict import inference_context, model_dtype, predict

__all__ = ["BASES", "FAST_SPAN_LIMIT", "edit_effects", "ism", "variant_edits", "window_edits"]

BASES = "ACGT"


def variant_edits(sequence: np.ndarray, variants: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Check ``variants`` against ``sequence`` and return their positions and ALT base indices.

    Parameters
    ----------
    sequence : np.ndarray, shape=(L, 4)
    variants : pd.DataFrame
        Columns ``pos0`` (0-based index in the window) and ``alt`` (one of A, C, G, T).

    Returns
    -------
    pos0 : np.ndarray, shape=(V,), int64
    alt : np.ndarray, shape=(V,), int64
        Column of the ALT base (A=0, C=1, G=2, T=3).

    Raises
    ------
    InputError
        Missing columns, positions outside the window, or ALT alleles that are not one base.
    """
    missing = {"pos0", "alt"} - set(variants.columns)
    if missing:
        raise InputError(
            f"variants lack column(s) {sorted(missing)}; give pos0 (0-based in the window) and alt"
        )
    seq_len = sequence.shape[0]
    pos0 = np.array(variants["pos0"], dtype=np.int64)
    bad = (pos0 < 0) | (pos0 >= seq_len)
    if bad.any():
        raise InputError(
            f"{int(bad.sum())} variant(s) lie outside the {seq_len}-bp window (pos0 {int(pos0[bad][0])}); "
            "pos0 is 0-based within the window"
        )
    alt_str = variants["alt"].astype(str).str.upper()
    lookup = {b: i for i, b in enumerate(BASES)}
    alt = alt_str.map(lookup)
    if alt.isna().any():
        raise InputError(
            f"ALT allele {alt_str[alt.isna()].iloc[0]!r} is not one of A, C, G, T; ISM scores SNVs only"
        )
    return pos0, alt.to_numpy(dtype=np.int64)


def check_sequence(sequence) -> np.ndarray:
    """``sequence`` as float32, checked to have shape (length, 4)."""
    seq = np.asarray(sequence, dtype=np.float32)
    if seq.ndim != 2 or seq.shape[1] != 4:
        raise InputError(f"sequence must have shape (length, 4), got {seq.shape}")
    return seq


def ism(
    model: nn.Module,
    sequence: np.ndarray,
    variants: pd.DataFrame,
    *,
    method: str = "fast",
    batch_size: int = 16,
    device: str | torch.device | None = None,
    precision: str = "32",
) -> np.ndarray:
    """ISM scores of SNVs: prediction(ALT alone in ``sequence``) - prediction(``sequence``).

    Parameters
    ----------
    model : torch.nn.Module
        A :class:`variformer.Variformer` (TSS-bin output) or a
        :class:`variformer.predict.CenterBins`-wrapped Enformer (sum of the centre bins of one
        track); any module mapping (B, L, 4) to (B,) for ``method="naive"``.
    sequence : np.ndarray, shape=(L, 4), float
        The background: the reference one-hot, or a person's averaged one-hot.
    variants : pd.DataFrame
        ``pos0`` (0-based index in the window) and ``alt`` (A/C/G/T), one row per SNV.
    method : {"fast", "naive"}, default "fast"
        The same numbers either way (within float rounding); "fast" recomputes only the
        local part of the network around each edit.
    batch_size : int, default 16
        Variants per forward.
    device : str or torch.device, optional
        Default: CUDA if available, else the CPU.
    precision : {"32", "bf16-mixed", "auto"}, default "32"
        As for :func:`variformer.predict.inference_context`. 32-bit on every device by default:
        an ISM score is a difference of two nearby predictions, and bf16's 8-bit mantissa can
        round it away or flip its sign.

    Returns
    -------
    np.ndarray, shape=(V,), float32
        Scores in ``variants`` order. An ALT equal to the background at its position (an
        identity edit, e.g. a person homozygous for it) scores exactly 0 without a forward.

    Raises
    ------
    InputError
        Malformed ``sequence`` or ``variants``, or an unknown ``method``.
    """
    seq = check_sequence(sequence)
    pos0, alt = variant_edits(seq, variants)
    eye = np.eye(4, dtype=np.float32)
    return edit_effects(
        model, seq, pos0, eye[alt][:, None, :], method=method, batch_size=batch_size,
        device=device, precision=precision,
    ).astype(np.float32)  # fmt: skip


def window_edits(base: np.ndarray, windows) -> tuple[np.ndarray, list[np.ndarray]]:
    """Each window as an edit of ``base``: the stretch from its first to its last differing row.

    Parameters
    ----------
    base : np.ndarray, shape=(L, 4)
    windows : iterable of np.ndarray, shape=(L, 4)
        E.g. the base with an indel applied and re-anchored at the TSS: the edit then covers the
        shifted part of the window (from the indel to the far end).

    Returns
    -------
    starts : np.ndarray, shape=(V,), int64
        0-based first differing row (0 for a window equal to ``base``).
    values : list of np.ndarray, shape=(k_i, 4)
        The window's rows ``[start, start + k_i)``; empty (k_i = 0) for a window equal to
        ``base``. Writing them into ``base`` gives the window back exactly.
    """
    starts, values = [], []
    for w in windows:
        differs = np.flatnonzero(np.any(w != base, axis=1))
        lo, hi = (int(differs[0]), int(differs[-1]) + 1) if len(differs) else (0, 0)
        starts.append(lo)
        values.append(np.asarray(w[lo:hi], dtype=np.float32))
    return np.asarray(starts, dtype=np.int64), values


def edit_effects(
    model: nn.Module,
    base: np.ndarray,
    starts,
    values,
    *,
    method: str = "fast",
    batch_size: int = 16,
    device: str | torch.device | None = None,
    precision: str = "32",
) -> np.ndarray:
    """prediction(``base`` with rows ``[s, s + k)`` replaced by each edit) - prediction(``base``).

    The engine of :func:`ism` (an SNV is a 1-row edit) and of the ISM of MNPs and indels
    (:func:`window_edits` turns an edited, re-anchored window into one edit). With
    ``method="fast"`` an edit narrower than :data:`FAST_SPAN_LIMIT` of the window recomputes
    only the local stages around it (exact: the receptive fields are widened by the edit's
    width); wider edits, e.g. an indel near the TSS that shifts half the window, take one plain
    forward each, as ``method="naive"`` does for all.

    Parameters
    ----------
    model : torch.nn.Module
        As for :func:`ism`.
    base : np.ndarray, shape=(L, 4), float
    starts : array-like, shape=(V,), int
        0-based first replaced row of each edit.
    values : sequence of np.ndarray, shape=(k_i, 4)
        The replacement rows; ``starts[i] + k_i <= L``.
    method, batch_size, device, precision
        As for :func:`ism`.

    Returns
    -------
    np.ndarray, shape=(V,), float64
        An edit that changes nothing (k_i = 0, or rows equal to the base's) scores exactly 0
        without a forward.
    """
    seq = check_sequence(base)
    if method not in ("fast", "naive"):
        raise InputError(f"method must be 'fast' or 'naive', got {method!r}")
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}")
    starts = np.asarray(starts, dtype=np.int64)
    widths = np.array([len(v) for v in values], dtype=np.int64)
    if len(starts) != len(widths) or np.any(starts < 0) or np.any(starts + widths > len(seq)):
        raise InputError(f"edits must lie inside the {len(seq)}-bp window")
    out = np.zeros(len(starts), dtype=np.float64)
    todo = [
        i
        for i in range(len(starts))
        if not np.array_equal(values[i], seq[starts[i] : starts[i] + widths[i]])
    ]
    if not todo:
        return out
    todo = np.array(todo, dtype=np.int64)
    fast = np.zeros(len(todo), dtype=bool)
    if method == "fast":
        fast = widths[todo] <= FAST_SPAN_LIMIT * len(seq)
    run = dict(batch_size=batch_size, device=device, precision=precision)
    for sel, engine in ((todo[fast], _fast_effects), (todo[~fast], _naive_effects)):
        if len(sel):
            sel = sel[np.argsort(widths[sel], kind="stable")]  # similar widths share a batch
            out[sel] = engine(model, seq, starts[sel], [values[i] for i in sel], **run)
    return out


#: edits up to this share of the window take the fast path (wider ones: one plain forward)
FAST_SPAN_LIMIT = 0.5


# ------------------------------------------------------------------------------------------
# naive: a plain forward per variant, through the shared predict path


def _edited_batches(seq: np.ndarray, starts: np.ndarray, values, batch_size: int):
    for lo in range(0, len(starts), batch_size):
        batch = np.repeat(seq[None], min(batch_size, len(starts) - lo), axis=0)
        for j, (s, v) in enumerate(zip(starts[lo : lo + batch_size], values[lo : lo + batch_size])):
            batch[j, s : s + len(v)] = v
        yield batch


def _naive_effects(model, seq, starts, values, *, batch_size, device, precision) -> np.ndarray:
    ref = predict(model, seq[None], batch_size=1, device=device, precision=precision)
    edited = _edited_batches(seq, starts, values, batch_size)
    alts = predict(model, edited, batch_size=batch_size, device=device, precision=precision)
    return alts.astype(np.float64) - np.float64(ref[0])


# ------------------------------------------------------------------------------------------
# fast: cache the local stages, recompute slices around each edit


def _split_forward(model: nn.Module):
    for name in ("local_stages", "forward_tower", "forward_from_tower"):
        if not callable(getattr(model, name, None)):
            raise InputError(
                f"method='fast' needs a Variformer or a CenterBins-wrapped Enformer "
                f"({type(model).__name__} has no {name}); use method='naive'"
            )
    try:
        return model.local_stages()
    except (TypeError, ValueError) as err:
        raise InputError(
            f"method='fast' cannot split this model ({err}); use method='naive'"
        ) from err


class _Geometry:
    """Per stage: output window width ``k``, input window width ``w`` and margin ``q``.

    A stage's input changes in at most ``k_in`` consecutive positions (the edit's width at the
    first stage); its output then changes in at most ``k = (k_in + 2 r + 1) // 2 + 1``
    (convolutions widen by the radius ``r`` on each side, pooling halves). The output window
    ``[o, o + k)`` is computed exactly from the input window ``[s, s + w)``,
    ``w = pool * k + 2 q``, ``q`` = ``r`` rounded up to a multiple of the pool size (so that
    pooling pairs stay aligned); windows are clamped inside the sequence, where the stage's own
    zero padding is the true one.
    """

    def __init__(self, stages, seq_len: int, width: int = 1):
        self.n_in, self.k, self.w, self.q = [], [], [], []
        n, k_in = seq_len, width
        for st in stages:
            if n % st.pool:
                raise InputError(
                    f"sequence length {seq_len} is not a multiple of {st.pool ** len(stages)} bp"
                )
            n_out = n // st.pool
            q = -(-st.radius // st.pool) * st.pool
            k = min((k_in + 2 * st.radius + st.pool - 1) // st.pool + 1, n_out)
            w = min(st.pool * k + 2 * q, n)
            self.n_in.append(n)
            self.k.append(k)
            self.w.append(w)
            self.q.append(q)
            n, k_in = n_out, k


def _gather(ref: torch.Tensor, starts: torch.Tensor, width: int) -> torch.Tensor:
    """Windows ``ref[0, :, s : s + width]`` for each start: (B, C, width)."""
    idx = starts[:, None] + torch.arange(width, device=ref.device)
    return ref[0][:, idx].permute(1, 0, 2)


def _splice_(x: torch.Tensor, starts: torch.Tensor, vals: torch.Tensor, at: torch.Tensor) -> None:
    """Write ``vals[b, :, j]`` to window position ``at[b] + j - starts[b]`` of ``x`` where it fits."""
    rel = at[:, None] - starts[:, None] + torch.arange(vals.shape[-1], device=x.device)
    b, j = torch.nonzero((rel >= 0) & (rel < x.shape[-1]), as_tuple=True)
    xt, vt = x.transpose(1, 2), vals.transpose(1, 2)  # views: (B, width, C)
    xt[b, rel[b, j]] = vt[b, j].to(x.dtype)


def _padded_edits(seq: np.ndarray, starts, values) -> tuple[np.ndarray, np.ndarray]:
    """The batch's edits as one width ``K`` (the widest): each widened with the base's own rows
    (which change nothing), kept inside the window. -> (starts (B,), rows (B, K, 4))."""
    width = max(len(v) for v in values)
    at = np.minimum(np.asarray(starts), len(seq) - width)
    rows = np.stack([seq[a : a + width] for a in at])
    for j, (s, v) in enumerate(zip(starts, values)):
        rows[j, s - at[j] : s - at[j] + len(v)] = v
    return at, rows


def _edited_towers(model, seq, starts, values, *, batch_size, dev):
    """Yield (batch start, conv-tower outputs of the edited windows); inside an inference context.

    ``starts``/``values`` as for :func:`edit_effects` (best sorted by width: a batch is computed
    at its widest edit's width)."""
    stages = _split_forward(model)
    geometry = {}
    dtype = model_dtype(model)
    h = torch.from_numpy(seq).to(dev, dtype).T[None]  # (1, 4, L)
    cache = [h]  # cache[i]: the window's input to stage i; cache[-1]: the tower output
    for st in stages:
        h = st.module(h)
        cache.append(h)
    yield -1, h
    for lo in range(0, len(starts), batch_size):
        at_np, rows = _padded_edits(seq, starts[lo : lo + batch_size], values[lo : lo + batch_size])
        width = rows.shape[1]
        if width not in geometry:
            geometry[width] = _Geometry(stages, seq.shape[0], width)
        geo = geometry[width]
        at = torch.from_numpy(at_np).to(dev)
        vals = torch.from_numpy(rows).to(dev, dtype).transpose(1, 2)  # changed input [at, at + K)
        for i, st in enumerate(stages):
            n_in, k, w, q = geo.n_in[i], geo.k[i], geo.w[i], geo.q[i]
            o = torch.clamp(torch.clamp(at - st.radius, min=0) // st.pool, max=n_in // st.pool - k)
            s = torch.clamp(st.pool * o - q, min=0, max=n_in - w)
            x = _gather(cache[i], s, w)
            _splice_(x, s, vals, at)
            y = st.module(x)  # (B, C', w // pool): outputs s // pool onwards
            rel = (o - s // st.pool)[:, None] + torch.arange(k, device=dev)
            vals = torch.gather(y, 2, rel[:, None, :].expand(-1, y.shape[1], -1))
            at = o
        tower = cache[-1].expand(len(at), -1, -1).clone()
        _splice_(tower, torch.zeros_like(at), vals, at)
        yield lo, tower


def _fast_effects(model, seq, starts, values, *, batch_size, device, precision) -> np.ndarray:
    with inference_context(model, device, precision=precision) as dev:
        towers = _edited_towers(model, seq, starts, values, batch_size=batch_size, dev=dev)
        _, ref_tower = next(towers)
        ref = model.forward_from_tower(ref_tower).float().cpu().double()
        out = [model.forward_from_tower(t).float().cpu().double() - ref for _, t in towers]
    return torch.cat(out).numpy()
