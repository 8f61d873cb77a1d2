"""The one place for batched model inference, and wrappers that reduce binned output to genes.

Evaluation, in-silico mutagenesis and attributions all run the model inside
:func:`inference_context`, the one place that picks the device, switches the model to eval
mode (and back), turns autograd off (on for input gradients) and sets the precision
(:data:`PRECISIONS`; one switch for every caller). :func:`predict` batches inputs through it
and returns float32 numpy on the CPU; :func:`predict_people` builds only the crop of a gene
dataset the model sees.

Enformer's binned output becomes a per-gene value through small wrapper modules rather than
flags: :class:`CenterBins` sums the centre bins of one track, as the paper does for the plain
Enformer baseline (track :data:`~variformer.config.ENFORMER_BLOOD_TRACK` 'CAGE:blood, adult, pool1', bins 191-193
of 384); :func:`load_enformer_track` loads pre-trained Enformer so wrapped.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from torch import nn

from core.errors import InputError
from data_prep.genome import crop_bounds
from variformer.config import ENFORMER_BLOOD_TRACK, ENFORMER_BRAIN_TRACK

if TYPE_CHECKING:
    from data_prep.dataset import GeneDatasetLike

__all__ = [
    "PRECISIONS",
    "CenterBins",
    "check_device",
    "inference_context",
    "load_enformer_track",
    "model_dtype",
    "predict",
    "predict_people",
    "resolve_device",
]

#: inference precisions: ``"auto"`` (bf16-mixed on CUDA, 32-bit elsewhere), ``"32"`` and
#: ``"bf16-mixed"`` (bf16 autocast, on any device)
PRECISIONS = ("auto", "32", "bf16-mixed")


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` as a ``torch.device``; None means CUDA if available, else the CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def check_device(device: str | torch.device | None) -> torch.device:
    """``--device`` checked against this machine at a command's start (None: the default).

    Torch would fail only at the first forward, after the inputs are read (for ISM or
    attributions, minutes in), and in a traceback.

    Raises
    ------
    InputError
        Not a torch device, CUDA (or MPS) not available here, or a CUDA index this machine
        does not have.
    """
    try:
        dev = resolve_device(device)
    except (RuntimeError, ValueError):
        raise InputError(
            f"--device {device} is not a torch device; use cpu, cuda or cuda:N"
        ) from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(
                f"--device {device}: CUDA is not available here; use --device cpu, or leave "
                "--device out (a GPU is used when there is one)"
            )
        n = torch.cuda.device_count()
        if dev.index is not None and dev.index >= n:
            raise InputError(
                f"--device {device}: this machine has {n} CUDA device(s), cuda:0..cuda:{n - 1}"
            )
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"--device {device}: MPS is not available here; use --device cpu")
    return dev


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


def model_dtype(model: nn.Module) -> torch.dtype:
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.float32


def autocast_enabled(device: torch.device, precision: str = "auto") -> bool:
    """Whether ``precision`` (one of :data:`PRECISIONS`) runs bf16 autocast on ``device``."""
    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision == "bf16-mixed" or (precision == "auto" and device.type == "cuda")


@contextmanager
def inference_context(
    model: nn.Module,
    device: str | torch.device | None = None,
    *,
    precision: str = "auto",
    grad: bool = False,
) -> Iterator[torch.device]:
    """Run ``model`` for inference: on ``device``, in eval mode, without autograd; yields the device.

    Parameters
    ----------
    model : torch.nn.Module
        Moved to the device (and left there: repeated calls should not copy the weights back
        and forth); each submodule's train/eval mode is restored on exit.
    device : str or torch.device, optional
        Default: CUDA if available, else the CPU (:func:`resolve_device`).
    precision : {"auto", "32", "bf16-mixed"}, default "auto"
        bf16 autocast with ``"bf16-mixed"``, and with ``"auto"`` on CUDA.
    grad : bool, default False
        Keep autograd on (input gradients); ``"auto"`` then means 32-bit on every device.
    """
    dev = resolve_device(device)
    if grad and precision == "auto":
        precision = "32"
    use_autocast = autocast_enabled(dev, precision)
    modes = [(m, m.training) for m in model.modules()]
    model.to(dev)
    try:
        model.eval()
        with (
            torch.set_grad_enabled(grad),
            torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_autocast),
        ):
            yield dev
    finally:
        for module, training in modes:
            module.training = training


def predict(
    model: nn.Module,
    X: np.ndarray | torch.Tensor | Iterable[np.ndarray | torch.Tensor],
    *,
    batch_size: int = 32,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    precision: str = "auto",
) -> np.ndarray:
    """Run ``model`` over ``X`` in batches and return its outputs as float32 numpy.

    Parameters
    ----------
    model : torch.nn.Module
        Maps a float tensor of shape (b, L, 4) to a tensor of shape (b,) or (b, ...), e.g. a
        :class:`~variformer.model.Variformer` or a :class:`CenterBins`-wrapped Enformer.
        Run inside :func:`inference_context` (it stays on ``device``).
    X : np.ndarray or torch.Tensor, shape=(n, L, 4), or an iterable of such arrays
        Sequences, or batches of sequences (e.g. a generator over genes or people); batches
        larger than ``batch_size`` are split.
    batch_size : int, default 32
    device : str or torch.device, optional
        Default: CUDA if available, else the CPU.
    dtype : torch.dtype, optional
        Dtype the inputs are cast to; default: the model's parameter dtype.
    precision : {"auto", "32", "bf16-mixed"}, default "auto"
        As for :func:`inference_context`: bf16 autocast on CUDA unless ``"32"``.

    Returns
    -------
    np.ndarray, shape=(n,) or (n, ...), float32
        The model's outputs in input order; shape (0,) when X is empty.

    Raises
    ------
    InputError
        ``batch_size < 1`` (a user's ``--batch-size``).
    """
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}")
    outputs: list[np.ndarray] = []
    with inference_context(model, device, precision=precision) as dev:
        in_dtype = model_dtype(model) if dtype is None else dtype
        for batch in _batches(X, batch_size):
            out = model(batch.to(device=dev, dtype=in_dtype, non_blocking=True))
            if not isinstance(out, torch.Tensor):
                raise TypeError(
                    f"model returned {type(out).__name__}, not a tensor; wrap it (e.g. "
                    f"CenterBins(enformer, head='human', track={ENFORMER_BLOOD_TRACK})) to get "
                    "one value per sequence"
                )
            outputs.append(out.float().cpu().numpy())
    if not outputs:
        return np.zeros((0,), dtype=np.float32)
    return np.concatenate(outputs, axis=0)


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
    haplotypes: bool = False,
) -> pd.DataFrame:
    """Predict each person's expression of each gene from their own sequence.

    Only the TSS-centred crop the model sees is built (``ds.sequences(..., start, end)``),
    ``chunk`` people at a time, and fed through :func:`predict`. With ``haplotypes`` (a run
    trained in haplotype mode, issue #24) the crops of each person's two haplotypes are built
    (``ds.haplotype_sequences``) and a person's prediction is the mean of their two.

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
        Sequences per forward (with ``haplotypes``: haplotype windows, two per person).
    device : str or torch.device, optional
        Default: CUDA if available, else the CPU.
    chunk : int
        People whose sequences are built at once (bounds memory: chunk x seq_len x 4 floats,
        twice that with ``haplotypes``).
    haplotypes : bool, default False
        The setting the model was trained with (``data.haplotypes`` as its run records it,
        :func:`variformer.config.recorded_haplotypes`); needs a dataset prepared with
        ``variformer prep --haplotypes``.

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
        if haplotypes:  # (c, 2, L, 4) -> 2c windows; their predictions -> (n, 2) -> mean
            chunks = (
                ds.haplotype_sequences(gene, people[i : i + chunk], start=start, end=end).reshape(
                    -1, end - start, 4
                )
                for i in range(0, len(people), chunk)
            )
            windows = predict(model, chunks, batch_size=batch_size, device=device)
            values = windows.reshape(len(people), 2).mean(axis=1, dtype=np.float32)
        else:
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
        Track (last axis) to keep, e.g. :data:`~variformer.config.ENFORMER_BLOOD_TRACK` or
        :data:`~variformer.config.ENFORMER_BRAIN_TRACK` of Enformer's human head; None keeps all tracks.
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


def load_enformer_track(
    source: str | os.PathLike, *, track: int = ENFORMER_BLOOD_TRACK, n_bins: int = 3
) -> CenterBins:
    """Pre-trained Enformer reduced to one value per sequence: ``track`` of the human head,
    summed over the ``n_bins`` centre bins (:class:`CenterBins`), as the paper's baseline.

    Raises
    ------
    InputError
        The weights cannot be loaded, or the human head has no track ``track``.
    """
    from variformer.enformer import load_enformer

    enformer = load_enformer(source)
    heads = dict(getattr(enformer.config, "output_heads", {}) or {})
    if "human" not in heads:
        raise InputError(f"Enformer {source} has no human output head (heads: {sorted(heads)})")
    if not 0 <= track < int(heads["human"]):
        raise InputError(
            f"--track {track} is not a track of Enformer's human head (0..{int(heads['human']) - 1}); "
            f"{ENFORMER_BLOOD_TRACK} is CAGE blood, {ENFORMER_BRAIN_TRACK} CAGE brain"
        )
    return CenterBins(enformer, n=n_bins, track=track, head="human")
