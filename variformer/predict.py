"""The one place for batched model inference, and wrappers that reduce binned output to genes.

Evaluation, in-silico mutagenesis and attributions all call :func:`predict` (people of a
gene dataset: :func:`predict_people`, which builds only the crop the model sees): it picks the
device, switches the model to eval mode (and back), batches, runs under ``no_grad`` (and bf16
autocast on CUDA), and returns float32 numpy on the CPU.

Enformer's binned output becomes a per-gene value through small wrapper modules rather than
flags: :class:`CenterBins` sums the centre bins of one track, as the paper does for the plain
Enformer baseline (track 4950 'CAGE:blood, adult, pool1', bins 191-193 of 384).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from torch import nn

from variformer.errors import InputError

if TYPE_CHECKING:
    from data_prep.dataset import GeneDatasetLike

__all__ = ["CenterBins", "crop_bounds", "predict", "predict_people", "resolve_device"]


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` as a ``torch.device``; None means CUDA if available, else the CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _to_tensor(batch: np.ndarray | torch.Tensor) -> torch.Tensor:
    if isinstance(batch, torch.Tensor):
        return batch
    if isinstance(batch, np.ndarray):
        # torch.from_numpy refuses read-only arrays (e.g. memory maps) without a copy
        return torch.from_numpy(batch if batch.flags.writeable else batch.copy())
    raise TypeError(f"expected np.ndarray or torch.Tensor batches, got {type(batch).__name__}")


def _batches(X, batch_size: int) -> Iterator[torch.Tensor]:
    """Split X (an array or an iterable of arrays) into tensors of at most batch_size rows."""
    chunks = [X] if isinstance(X, np.ndarray | torch.Tensor) else X
    for chunk in chunks:
        if chunk.ndim != 3:
            raise ValueError(
                f"expected sequences of shape (n, length, 4), got {tuple(chunk.shape)}"
            )
        for start in range(0, chunk.shape[0], batch_size):
            yield _to_tensor(chunk[start : start + batch_size])


def _model_dtype(model: nn.Module) -> torch.dtype:
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.float32


def predict(
    model: nn.Module,
    X: np.ndarray | torch.Tensor | Iterable[np.ndarray | torch.Tensor],
    *,
    batch_size: int = 32,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    autocast: bool | None = None,
) -> np.ndarray:
    """Run ``model`` over ``X`` in batches and return its outputs as float32 numpy.

    Parameters
    ----------
    model : torch.nn.Module
        Maps a float tensor of shape (b, L, 4) to a tensor of shape (b,) or (b, ...), e.g. a
        :class:`~variformer.model.Variformer` or a :class:`CenterBins`-wrapped Enformer.
        It is moved to ``device`` (and stays there: repeated calls should not copy the weights
        back and forth); each submodule's train/eval mode is restored on return.
    X : np.ndarray or torch.Tensor, shape=(n, L, 4), or an iterable of such arrays
        Sequences, or batches of sequences (e.g. a generator over genes or people); batches
        larger than ``batch_size`` are split.
    batch_size : int, default 32
    device : str or torch.device, optional
        Default: CUDA if available, else the CPU.
    dtype : torch.dtype, optional
        Dtype the inputs are cast to; default: the model's parameter dtype.
    autocast : bool, optional
        Run under bf16 autocast; default: on for CUDA, off for the CPU.

    Returns
    -------
    np.ndarray, shape=(n,) or (n, ...), float32
        The model's outputs in input order; shape (0,) when X is empty.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    dev = resolve_device(device)
    use_autocast = dev.type == "cuda" if autocast is None else bool(autocast)
    modes = [(m, m.training) for m in model.modules()]
    model.to(dev)
    in_dtype = _model_dtype(model) if dtype is None else dtype
    outputs: list[np.ndarray] = []
    try:
        model.eval()
        with torch.no_grad(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_autocast):
            for batch in _batches(X, batch_size):
                out = model(batch.to(device=dev, dtype=in_dtype, non_blocking=True))
                if not isinstance(out, torch.Tensor):
                    raise TypeError(
                        f"model returned {type(out).__name__}, not a tensor; wrap it (e.g. "
                        "CenterBins(enformer, head='human', track=4950)) to get one value per sequence"
                    )
                outputs.append(out.float().cpu().numpy())
    finally:
        for module, training in modes:
            module.training = training
    if not outputs:
        return np.zeros((0,), dtype=np.float32)
    return np.concatenate(outputs, axis=0)


def crop_bounds(window_len: int, seq_len: int | None = None) -> tuple[int, int]:
    """0-based half-open ``(start, end)`` of the ``seq_len`` crop of a window, TSS-centred.

    The TSS at index ``window_len // 2`` of the window stays at index ``seq_len // 2`` of the
    crop. ``seq_len=None`` is the whole window.

    Raises
    ------
    InputError
        If ``seq_len`` exceeds the window.
    """
    window_len = int(window_len)
    seq_len = window_len if seq_len is None else int(seq_len)
    if not 1 <= seq_len <= window_len:
        raise InputError(
            f"seq_len={seq_len} does not fit the dataset's {window_len} bp windows; lower it"
        )
    start = window_len // 2 - seq_len // 2
    return start, start + seq_len


def predict_people(
    model: nn.Module,
    ds: GeneDatasetLike,
    genes: str | Sequence[str],
    samples: Sequence[str] | Mapping[str, Sequence[str]],
    *,
    seq_len: int | None = None,
    batch_size: int = 32,
    device: str | torch.device | None = None,
    chunk: int = 256,
) -> pd.DataFrame:
    """Predict each person's expression of each gene from their own sequence.

    Only the TSS-centred crop the model sees is built (``ds.sequences(..., start, end)``),
    ``chunk`` people at a time, and fed through :func:`predict`.

    Parameters
    ----------
    model : torch.nn.Module
        Maps (b, seq_len, 4) to (b,), e.g. a :class:`~variformer.model.Variformer`.
    ds : GeneDatasetLike
        ``data_prep.open_dataset(...)`` or another :class:`data_prep.GeneDatasetLike`.
    genes : str or sequence of str
    samples : sequence of str, or mapping gene -> sequence of str
        The same people for every gene, or each gene's own people.
    seq_len : int, optional
        Crop length around the TSS (:func:`crop_bounds`); default the dataset's windows.
    batch_size : int
    device : str or torch.device, optional
        Default: CUDA if available, else the CPU.
    chunk : int
        People whose sequences are built at once (bounds memory: chunk x seq_len x 4 floats).

    Returns
    -------
    pd.DataFrame
        Columns ``sample, gene, predicted`` (float64); one row per gene x person, gene-major,
        people in the given order.
    """
    genes = [genes] if isinstance(genes, str) else list(genes)
    start, end = crop_bounds(int(ds.seq_len), seq_len)
    frames = []
    for gene in genes:
        people = list(samples[gene] if isinstance(samples, Mapping) else samples)
        chunks = (
            ds.sequences(gene, people[i : i + chunk], start=start, end=end)
            for i in range(0, len(people), chunk)
        )
        values = predict(model, chunks, batch_size=batch_size, device=device)
        frames.append(
            pd.DataFrame(
                {
                    "sample": pd.Series(people, dtype=object),
                    "gene": gene,
                    "predicted": values.astype(np.float64).reshape(len(people)),
                }
            )
        )
    if not frames:
        return pd.DataFrame({"sample": [], "gene": [], "predicted": []})
    return pd.concat(frames, ignore_index=True)


class CenterBins(nn.Module):
    """Sum the ``n`` centre bins of a binned output (optionally of one track / one head).

    Parameters
    ----------
    model : torch.nn.Module
        Returns shape (B, n_bins) or (B, n_bins, n_tracks), or a dict of such per head
        (plain Enformer; then give ``head``).
    n : int, default 3
        Bins summed: ``c - n // 2`` to ``c - n // 2 + n - 1`` (0-based) with ``c = n_bins // 2``,
        i.e. bins 191, 192, 193 of 384 for 49,152 bp inputs, as in the paper.
    track : int, optional
        Track (last axis) to keep, e.g. 4950 'CAGE:blood, adult, pool1' or 4980 'CAGE:brain,
        adult' of Enformer's human head; None keeps all tracks.
    head : str, optional
        Passed as ``model(x, head=head)``, e.g. ``"human"`` for enformer-pytorch's Enformer.

    Notes
    -----
    ``forward(x)`` maps x of shape (B, L, 4) to (B,) (or (B, n_tracks) when ``track`` is None
    and the output has tracks).
    """

    def __init__(
        self, model: nn.Module, *, n: int = 3, track: int | None = None, head: str | None = None
    ) -> None:
        super().__init__()
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        self.model = model
        self.n = int(n)
        self.track = track
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x) if self.head is None else self.model(x, head=self.head)
        if isinstance(out, dict):
            raise TypeError(f"the model returns one output per head ({sorted(out)}); pass head=...")
        if self.track is not None:
            if out.ndim != 3:
                raise ValueError(
                    f"track={self.track} needs an output of shape (B, bins, tracks), got {tuple(out.shape)}"
                )
            out = out[..., self.track]
        n_bins = out.shape[1]
        if self.n > n_bins:
            raise ValueError(f"cannot sum {self.n} centre bins of an output with {n_bins} bins")
        lo = n_bins // 2 - self.n // 2
        return out[:, lo : lo + self.n].sum(dim=1)

    # --- split forward (fast ISM, input gradients) around an enformer_pytorch.Enformer -------
    def _enformer(self):
        from enformer_pytorch import Enformer

        if not isinstance(self.model, Enformer):
            raise TypeError(
                f"the split forward needs CenterBins around an enformer_pytorch.Enformer, "
                f"not {type(self.model).__name__}; use method='naive'"
            )
        return self.model

    def local_stages(self) -> list:
        """The wrapped Enformer's local blocks (see :func:`variformer.enformer.enformer_local_stages`)."""
        from variformer.enformer import enformer_local_stages

        return enformer_local_stages(self._enformer())

    def forward_tower(self, x: torch.Tensor) -> torch.Tensor:
        """Stem and conv tower of the wrapped Enformer: (B, L, 4) -> (B, C, L // 128)."""
        from variformer.enformer import enformer_tower

        return enformer_tower(self._enformer(), x)

    def forward_from_tower(self, h: torch.Tensor) -> torch.Tensor:
        """Transformer and head on a conv-tower output; the centre bins only, summed.

        ``forward_from_tower(forward_tower(x))`` equals ``forward(x)`` in eval mode.
        """
        from variformer.enformer import enformer_embeddings_from_tower

        enformer = self._enformer()
        if self.head is None:
            raise TypeError(
                f"the model has one output per head ({sorted(enformer.heads)}); pass head=..."
            )
        emb = enformer_embeddings_from_tower(enformer, h, center=self.n)
        out = enformer.heads[self.head](emb)  # (B, n, tracks)
        if self.track is not None:
            out = out[..., self.track]
        return out.sum(dim=1)
