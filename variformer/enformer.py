"""Enformer itself: loading pre-trained weights, and its trunk run in two parts.

:func:`load_enformer` loads a pre-trained Enformer for any input length (TF gamma features
off, no target crop). The split forward runs the trunk's local part (stem and conv tower,
:func:`enformer_local_stages`, :func:`enformer_tower`) apart from the rest (transformer, crop,
final pointwise block: :func:`enformer_embeddings_from_tower`), so fast ISM
(:mod:`variformer.analysis.mutagenesis`) can recompute a short slice of the tower around an edit.
:class:`variformer.model.Variformer` and :class:`variformer.predict.CenterBins` build on these.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NamedTuple

import torch
from enformer_pytorch import Enformer
from enformer_pytorch.modeling_enformer import Attention, AttentionPool
from torch import nn

from core.errors import InputError
from core.runs import RUN_DIR_FILES

__all__ = [
    "LocalStage",
    "enformer_embeddings_from_tower",
    "enformer_local_stages",
    "enformer_tower",
    "load_enformer",
]

# File names looked for, in this order, when Variformer.load is given a directory
# (load_enformer names them when such a directory is passed to it instead).


def _is_offline() -> bool:
    # Read at call time: huggingface_hub reads HF_HUB_OFFLINE only once, at import.
    truthy = {"1", "true", "yes", "on"}
    return any(
        os.environ.get(k, "").lower() in truthy for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face endpoint accepts a connection within ``timeout`` seconds.

    Checked before a download so that, offline, a hub id fails at once (from the local cache
    only) instead of after a minute of retries.
    """
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def _set_tf_gamma_(enformer: Enformer, use_tf_gamma: bool) -> None:
    enformer.config.use_tf_gamma = use_tf_gamma
    enformer.use_tf_gamma = use_tf_gamma
    for module in enformer.modules():
        if isinstance(module, Attention):
            module.use_tf_gamma = use_tf_gamma


def load_enformer(
    path_or_hub_id: str | os.PathLike, *, use_tf_gamma: bool = False, **kwargs: Any
) -> Enformer:
    """Load a pre-trained Enformer that accepts any input length that is a multiple of 128 bp.

    Unlike enformer-pytorch's module-level ``from_pretrained`` (which turns on the TF gamma
    positional features for the official weights, valid for 196,608 bp only), the TF gamma
    features are off unless asked for, and the 896-bin target crop is disabled so that a
    49,152 bp input yields all its 384 bins. The human/mouse output heads are kept, so the
    result also serves as the plain-Enformer baseline (see :class:`variformer.predict.CenterBins`).

    Parameters
    ----------
    path_or_hub_id : str or os.PathLike
        A local directory written by ``Enformer.save_pretrained`` (``config.json`` plus
        ``pytorch_model.bin`` or ``model.safetensors``) or a Hugging Face hub id.
    use_tf_gamma : bool, default False
        Use TensorFlow's precomputed gamma positional features (196,608 bp inputs only).
    **kwargs
        Passed to ``Enformer.from_pretrained``: config overrides (``use_checkpointing=True``,
        ``dropout_rate=...``) or loading options (``cache_dir``, ``local_files_only``).

    Returns
    -------
    enformer_pytorch.Enformer
        In eval mode, on the CPU, ``config.target_length == -1``.

    Raises
    ------
    InputError
        If the directory does not exist or holds no Enformer, or the hub id cannot be fetched
        (offline, or not downloaded yet). With ``HF_HUB_OFFLINE=1``, or when the hub cannot be
        reached within a few seconds, only the local cache is tried (no retries).
    """
    name = os.fspath(path_or_hub_id)
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            hint = (
                " (it looks like a fine-tuned run: load it with Variformer.load)"
                if any((path / f).is_file() for f in RUN_DIR_FILES)
                else ""
            )
            raise InputError(
                f"{name} holds no config.json, so it is not an Enformer save_pretrained directory{hint}"
            )
        source = str(path)
    elif (
        name.startswith((".", "/", "~"))
        or name.count("/") > 1
        or (os.sep != "/" and os.sep in name)
    ):
        # a hub id is "name" or "namespace/name"; anything else was meant as a local path
        raise InputError(
            f"no such directory: {name}; pass a directory written by Enformer.save_pretrained"
        )
    else:
        source = name
        if _is_offline() or not _hub_reachable():
            kwargs.setdefault("local_files_only", True)  # the cache only: no retries offline
    try:
        enformer = Enformer.from_pretrained(
            source, use_tf_gamma=use_tf_gamma, target_length=-1, **kwargs
        )
    except (OSError, ValueError) as err:
        if source != name:  # a local directory: the files are there but broken
            raise InputError(
                f"could not load Enformer weights from {name}: {err}".splitlines()[0]
            ) from err
        raise InputError(
            f"could not load Enformer weights {name!r} (offline?): download them once with "
            f"`huggingface-cli download {name}` (then they load from the cache, also with HF_HUB_OFFLINE=1) "
            "or pass --pretrained /path/to/local/dir (a directory written by Enformer.save_pretrained)"
        ) from err
    enformer.set_target_length(-1)
    _set_tf_gamma_(enformer, use_tf_gamma)
    return enformer.eval()


class LocalStage(NamedTuple):
    """One block of Enformer's local part (the stem or one conv-tower block).

    ``module`` maps (B, C, n) to (B, C', n // pool) in eval mode, and output ``j`` depends only
    on inputs ``pool * j - radius`` to ``pool * j + pool - 1 + radius`` (zero-padded at the
    sequence ends). Fast ISM (:mod:`variformer.analysis.mutagenesis`) recomputes a stage on a short
    slice around an edit instead of on the whole window.
    """

    module: nn.Module
    radius: int
    pool: int


def enformer_local_stages(enformer: Enformer) -> list[LocalStage]:
    """The stem and conv-tower blocks of ``enformer`` with their receptive-field radii.

    Everything before Enformer's transformer is local in eval mode: stride-1 convolutions
    (radius ``kernel_size // 2`` each), BatchNorm on running statistics, GELU, residual sums,
    and one 2-wide attention pooling at the end of each block.

    Raises
    ------
    ValueError
        If a block does not have that structure (then use plain forwards instead).
    """
    stages = []
    for block in (enformer.stem, *enformer.conv_tower):
        radius = 0
        for m in block.modules():
            if isinstance(m, nn.Conv1d):
                k = m.kernel_size[0]
                if m.stride[0] != 1 or m.dilation[0] != 1 or m.padding != (k // 2,) or k % 2 == 0:
                    raise ValueError(f"not a same-padded stride-1 convolution: {m}")
                radius += k // 2
        last = list(block.children())[-1]
        pools = [m for m in block.modules() if isinstance(m, AttentionPool)]
        if pools != [last]:
            raise ValueError(f"expected one AttentionPool at the end of {block}")
        stages.append(LocalStage(block, radius, int(last.pool_size)))
    return stages


def enformer_tower(enformer: Enformer, x: torch.Tensor) -> torch.Tensor:
    """Stem and conv tower: (B, L, 4) one-hot -> (B, C, L // 2**num_downsamples)."""
    h = x.transpose(1, 2)
    for stage in enformer_local_stages(enformer):
        h = stage.module(h)
    return h


def enformer_embeddings_from_tower(
    enformer: Enformer, h: torch.Tensor, *, center: int | None = None
) -> torch.Tensor:
    """Transformer, target crop and final pointwise block on a conv-tower output.

    Parameters
    ----------
    enformer : enformer_pytorch.Enformer
    h : torch.Tensor, shape=(B, C, n_bins)
        The output of :func:`enformer_tower` (possibly with some bins replaced).
    center : int, optional
        Keep only the ``center`` centre bins of the cropped output (``n // 2 - center // 2``
        onwards, as :class:`variformer.predict.CenterBins` sums) before the final pointwise
        block, which works per bin; None keeps all bins.

    Returns
    -------
    torch.Tensor, shape=(B, n_kept, 2 * dim)
        The trunk's embeddings, as ``enformer(x, return_only_embeddings=True)`` gives them.
    """
    x = enformer.transformer(h.transpose(1, 2))
    x = enformer.crop_final(x)
    if center is not None:
        lo = x.shape[1] // 2 - center // 2
        x = x[:, lo : lo + center]
    return enformer.final_pointwise(x)
