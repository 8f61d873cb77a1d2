"""The Variformer model: Enformer's trunk, one linear output track, read at the TSS bin.

Follows the paper (Methods, "Fine-tuned Enformer architecture and pre-trained weights"):
enformer-pytorch's ``HeadAdapterWrapper`` with ``num_tracks=1``, ``post_transformer_embed=False``
and an identity output activation, so a 49,152 bp input becomes 384 bins x 3072 features ->
linear -> 384 x 1, and the prediction is bin 192, the bin holding the TSS.

Three ways to build one:

- :meth:`Variformer.from_pretrained` -- pre-trained Enformer weights from a local Hugging Face
  directory or a hub id (``EleutherAI/enformer-official-rough``);
- :meth:`Variformer.from_hparams` -- random initial weights, any size;
- :meth:`Variformer.load` -- a fine-tuned model saved by :meth:`Variformer.save` or a Lightning
  checkpoint written by the training system.

Checkpoint contract (shared with the training system, ``variformer/system.py``): a Lightning
checkpoint is loadable when the LightningModule keeps the Variformer as attribute ``self.model``
(so its ``state_dict`` keys start with ``model.``) and its ``hyper_parameters`` hold the dict
:attr:`Variformer.enformer_hparams` under the key ``"enformer_hparams"`` (optionally the bool
``"freeze_trunk"`` too).

Loading pre-trained Enformer weights and the split forward (conv tower apart from the
transformer) live in :mod:`variformer.enformer`.
"""

from __future__ import annotations

import copy
import inspect
import os
from functools import partial
from pathlib import Path
from typing import Any

import torch
from enformer_pytorch import Enformer, EnformerConfig
from enformer_pytorch.finetune import HeadAdapterWrapper
from torch import nn

from core.errors import InputError
from core.runs import RUN_DIR_FILES, model_file
from variformer.config import ENFORMER_HUB_ID
from variformer.enformer import (
    LocalStage,
    enformer_embeddings_from_tower,
    enformer_local_stages,
    enformer_tower,
    load_enformer,
)

__all__ = ["Variformer"]

# Enformer's TF positional "gamma" features were precomputed for 1536 bins (196,608 bp) only.
_TF_GAMMA_BINS = 1536
_SAVE_FORMAT = "variformer-model"


def _enformer_hparam_defaults() -> dict[str, Any]:
    """EnformerConfig's constructor arguments and defaults (the hparams that define a trunk)."""
    params = inspect.signature(EnformerConfig.__init__).parameters
    return {
        name: p.default
        for name, p in params.items()
        if name != "self" and p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    }


def _follow_owner_mode(owner: nn.Module, bn: nn.Module, args) -> None:
    bn.train(owner.training)
    bn.track_running_stats = True
    bn.requires_grad_(True)


class Variformer(nn.Module):
    """Enformer trunk + linear head predicting one expression value per sequence (the TSS bin).

    Parameters
    ----------
    enformer : enformer_pytorch.Enformer
        A built Enformer. It is taken over, not copied: its target crop is disabled, its
        original output heads are removed (unused here; removing them keeps checkpoints and
        DDP free of parameters without gradients) and its BatchNorm layers are frozen (eval-mode
        running statistics, no gradients), as ``HeadAdapterWrapper.forward`` does on every call.
    freeze_trunk : bool, default False
        Train only the new linear head (the paper's frozen-trunk variant: HeadAdapterWrapper's
        ``freeze_enformer=True``). The trunk's parameters get ``requires_grad=False``.
    train_batchnorm : bool, default False
        Train Enformer's BatchNorm layers (batch statistics, affine weights) instead of keeping
        them frozen as HeadAdapterWrapper does. Frozen suits pre-trained weights (the paper);
        with random initial weights the stored statistics are the identity, the signal fades
        through the conv tower and the model barely depends on its input, so train them.

    Notes
    -----
    The TSS bin of an input of ``L`` bp is ``(L // 2) // bin_size`` with ``bin_size = 128``
    (``2 ** num_downsamples``): bin 192 of 384 at 49,152 bp, the bin holding position
    ``L // 2`` (0-based), where the dataset puts the TSS (``tss0 - start0 == seq_len // 2``).
    """

    def __init__(
        self, enformer: Enformer, *, freeze_trunk: bool = False, train_batchnorm: bool = False
    ) -> None:
        super().__init__()
        if not isinstance(enformer, Enformer):
            raise TypeError(
                f"enformer must be an enformer_pytorch.Enformer, not {type(enformer).__name__}"
            )
        enformer.set_target_length(-1)
        enformer.config.target_length = -1
        enformer.add_heads()  # no heads: HeadAdapterWrapper reads the trunk's embeddings only
        enformer.config.output_heads = {}
        # HeadAdapterWrapper.forward freezes the BatchNorms on every call (eval mode, running
        # statistics, no gradients); their requires_grad is cleared here already so that an
        # optimizer or DDP built before the first forward does not see them as trainable.
        for module in enformer.modules():
            if isinstance(module, nn.BatchNorm1d):
                module.requires_grad_(False)
        self.adapter = HeadAdapterWrapper(
            enformer=enformer,
            num_tracks=1,
            post_transformer_embed=False,
            # fresh modules: HeadAdapterWrapper's default nn.Identity() is one object shared by
            # every instance, so one model's .eval() would flip the others' copy
            transformer_embed_fn=nn.Identity(),
            output_activation=nn.Identity(),
            auto_set_target_length=False,
        )
        self.freeze_trunk = bool(freeze_trunk)
        self.train_batchnorm = bool(train_batchnorm)
        if self.train_batchnorm:
            # HeadAdapterWrapper re-freezes the BatchNorms before every forward; a pre-hook on
            # each undoes that right before it runs, following this model's train/eval mode
            # (eval then uses the running statistics gathered in training, also after load).
            for module in enformer.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.requires_grad_(True)
                    module.register_forward_pre_hook(partial(_follow_owner_mode, self))
        if self.freeze_trunk:
            enformer.requires_grad_(False)

    # --- construction -------------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls,
        path_or_hub_id: str | os.PathLike = ENFORMER_HUB_ID,
        *,
        freeze_trunk: bool = False,
        train_batchnorm: bool = False,
        use_tf_gamma: bool = False,
        **kwargs: Any,
    ) -> Variformer:
        """A Variformer on pre-trained Enformer weights (see :func:`~variformer.enformer.load_enformer`).

        Parameters
        ----------
        path_or_hub_id : str or os.PathLike, default "EleutherAI/enformer-official-rough"
            Local ``Enformer.save_pretrained`` directory or Hugging Face hub id.
        freeze_trunk : bool, default False
            Train the new linear head only.
        use_tf_gamma : bool, default False
            TF gamma positional features; valid for 196,608 bp inputs only.
        **kwargs
            Passed to ``Enformer.from_pretrained`` (e.g. ``use_checkpointing=True``).

        Raises
        ------
        InputError
            If the weights cannot be found (offline and not cached, wrong directory).
        """
        enformer = load_enformer(path_or_hub_id, use_tf_gamma=use_tf_gamma, **kwargs)
        return cls(enformer, freeze_trunk=freeze_trunk, train_batchnorm=train_batchnorm)

    @classmethod
    def from_hparams(
        cls, *, freeze_trunk: bool = False, train_batchnorm: bool = False, **enformer_hparams: Any
    ) -> Variformer:
        """A Variformer with random initial weights; any Enformer size.

        Parameters
        ----------
        freeze_trunk : bool, default False
            Train the new linear head only.
        **enformer_hparams
            ``EnformerConfig`` arguments (``dim``, ``depth``, ``heads``, ``attn_dim_key``,
            ``num_downsamples``, ``dim_divisible_by``, ``dropout_rate``, ...). Requirements of
            enformer-pytorch: ``(dim // heads) % 6 == 0`` and ``dim_divisible_by`` small enough
            that the conv tower's widths (between ``dim // 2`` and ``dim``) do not round to 0.
            Keep ``num_downsamples=7`` for 128 bp bins.
        """
        unknown = set(enformer_hparams) - set(_enformer_hparam_defaults())
        if unknown:
            raise InputError(
                f"unknown Enformer hparams {sorted(unknown)}; known: {sorted(_enformer_hparam_defaults())}"
            )
        hparams = {"output_heads": {}, "target_length": -1, **enformer_hparams}
        dim, heads = hparams.get("dim", 1536), hparams.get("heads", 8)
        if (dim // heads) % 6:
            raise InputError(
                f"Enformer needs (dim // heads) divisible by 6; got dim={dim}, heads={heads}"
            )
        return cls(
            Enformer.from_hparams(**hparams),
            freeze_trunk=freeze_trunk,
            train_batchnorm=train_batchnorm,
        )

    @classmethod
    def load(cls, path: str | os.PathLike, *, freeze_trunk: bool | None = None) -> Variformer:
        """Rebuild a saved or fine-tuned Variformer without the hub.

        Parameters
        ----------
        path : str or os.PathLike
            A file written by :meth:`save`, a Lightning checkpoint (see the module docstring for
            its contract), or a run directory holding ``model.pt`` or ``best.ckpt``.
        freeze_trunk : bool, optional
            Override the saved setting.

        Returns
        -------
        Variformer
            On the CPU, in training mode (call ``.eval()`` for inference; :func:`predict` does).

        Raises
        ------
        InputError
            If the path is missing or is not a Variformer save / checkpoint.

        Notes
        -----
        Files are read with ``torch.load(weights_only=True)``: tensors and plain containers only,
        so a file that carries pickled code is refused instead of run.
        """
        file = model_file(path)
        try:
            # weights_only: tensors and plain containers only, so a tampered file cannot run code
            payload = torch.load(file, map_location="cpu", weights_only=True, mmap=True)
        except Exception as err:  # corrupt / foreign files raise many different errors
            raise InputError(
                f"could not read {file} as a torch file ({str(err).splitlines()[0]}); it is "
                "damaged or not a model: re-run the fine-tuning that wrote it"
            ) from err
        if not isinstance(payload, dict):
            raise InputError(f"{file} is not a Variformer save or Lightning checkpoint")
        if payload.get("format") == _SAVE_FORMAT:
            hparams, state, saved_freeze = (
                payload["enformer_hparams"],
                payload["state_dict"],
                payload["freeze_trunk"],
            )
            saved_bn = bool(payload.get("train_batchnorm", False))
        elif "state_dict" in payload and "hyper_parameters" in payload:
            hyper = payload["hyper_parameters"]
            if "enformer_hparams" not in hyper:
                raise InputError(
                    f"{file} is a Lightning checkpoint without hyper_parameters['enformer_hparams'], "
                    "so its Variformer cannot be rebuilt"
                )
            hparams, saved_freeze = (
                hyper["enformer_hparams"],
                bool(hyper.get("freeze_trunk", False)),
            )
            saved_bn = bool(hyper.get("train_batchnorm", False))
            state = {
                k.removeprefix("model."): v
                for k, v in payload["state_dict"].items()
                if k.startswith("model.")
            }
        else:
            raise InputError(f"{file} is not a Variformer save or Lightning checkpoint")
        model = cls.from_hparams(
            freeze_trunk=saved_freeze if freeze_trunk is None else freeze_trunk,
            train_batchnorm=saved_bn,
            **dict(hparams),
        )
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise InputError(
                f"{file} does not match its Enformer hparams ({len(missing)} missing, "
                f"{len(unexpected)} unexpected weights, e.g. {(missing or unexpected)[0]})"
            )
        return model

    def save(self, path: str | os.PathLike) -> Path:
        """Write the Enformer hparams, ``freeze_trunk`` and all weights to one file.

        Parameters
        ----------
        path : str or os.PathLike
            Target file; an existing directory gets ``model.pt`` inside it. Written to a
            temporary sibling first and renamed, so an interrupted save leaves no partial file.

        Returns
        -------
        pathlib.Path
            The file written; :meth:`load` reads it (or its directory) back.
        """
        file = Path(path).expanduser()
        if file.is_dir():
            file = file / RUN_DIR_FILES[0]
        payload = {
            "format": _SAVE_FORMAT,
            "version": 1,
            "enformer_hparams": self.enformer_hparams,
            "freeze_trunk": self.freeze_trunk,
            "train_batchnorm": self.train_batchnorm,
            "state_dict": {k: v.detach().cpu() for k, v in self.state_dict().items()},
        }
        tmp = file.with_name(f".{file.name}.tmp-{os.getpid()}")
        try:
            torch.save(payload, tmp)
            os.replace(tmp, file)
        finally:
            tmp.unlink(missing_ok=True)
        return file

    # --- properties -----------------------------------------------------------------------
    @property
    def enformer(self) -> Enformer:
        """The Enformer trunk (the same object the adapter runs)."""
        return self.adapter.enformer

    @property
    def head(self) -> nn.Linear:
        """The new linear output layer, ``2 * dim`` features -> 1 track."""
        return self.adapter.to_tracks[0]

    @property
    def bin_size(self) -> int:
        """Base pairs per output bin (128 for Enformer's 7 downsamplings)."""
        return 2 ** int(self.enformer.config.num_downsamples)

    @property
    def enformer_hparams(self) -> dict[str, Any]:
        """The ``EnformerConfig`` arguments that rebuild this trunk (plain, YAML-friendly values)."""
        cfg = self.enformer.config
        hparams = {
            name: copy.deepcopy(getattr(cfg, name, default))
            for name, default in _enformer_hparam_defaults().items()
        }
        hparams["output_heads"] = dict(self.enformer.output_heads)
        hparams["target_length"] = -1
        return hparams

    def tss_bin(self, seq_len: int) -> int:
        """0-based index of the bin holding position ``seq_len // 2`` (0-based), the TSS."""
        return (int(seq_len) // 2) // self.bin_size

    # --- forward --------------------------------------------------------------------------
    def forward_bins(self, x: torch.Tensor) -> torch.Tensor:
        """The head's value in every bin.

        Parameters
        ----------
        x : torch.Tensor, shape=(B, L, 4), float
            One-hot (or allele-averaged) sequences, A/C/G/T columns; ``L`` a multiple of 128.

        Returns
        -------
        torch.Tensor, shape=(B, L // 128)
        """
        self._check_input(x)
        out = self.adapter(x, freeze_enformer=self.freeze_trunk)  # (B, n_bins, 1)
        return out[..., 0]

    def _check_input(self, x: torch.Tensor) -> None:
        if x.ndim != 3 or x.shape[-1] != 4:
            raise ValueError(
                f"expected sequences of shape (batch, length, 4), got {tuple(x.shape)}"
            )
        seq_len = x.shape[1]
        if seq_len % self.bin_size:
            raise InputError(
                f"sequence length {seq_len} is not a multiple of {self.bin_size} bp; prepare windows of e.g. 49152 bp"
            )
        if self.enformer.use_tf_gamma and seq_len // self.bin_size != _TF_GAMMA_BINS:
            raise InputError(
                f"use_tf_gamma=True works only for {_TF_GAMMA_BINS * self.bin_size} bp inputs, got {seq_len}; "
                "build the model with use_tf_gamma=False"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Predicted expression: the TSS bin's value.

        Parameters
        ----------
        x : torch.Tensor, shape=(B, L, 4), float

        Returns
        -------
        torch.Tensor, shape=(B,)
            Bin ``(L // 2) // 128`` of :meth:`forward_bins` (bin 192 at 49,152 bp).
        """
        return self.forward_bins(x)[:, self.tss_bin(x.shape[1])]

    # --- split forward (fast ISM, input gradients) ------------------------------------------
    def local_stages(self) -> list[LocalStage]:
        """The trunk's local blocks (stem, conv tower); see :func:`~variformer.enformer.enformer_local_stages`."""
        return enformer_local_stages(self.enformer)

    def forward_tower(self, x: torch.Tensor) -> torch.Tensor:
        """The local part of the trunk: (B, L, 4) -> conv-tower output (B, C, L // 128).

        ``forward_from_tower(forward_tower(x))`` equals ``forward(x)`` in eval mode (BatchNorm
        on running statistics); unlike ``forward`` it keeps gradients also with
        ``freeze_trunk=True``, so input gradients can flow through it.
        """
        self._check_input(x)
        return enformer_tower(self.enformer, x)

    def forward_from_tower(self, h: torch.Tensor) -> torch.Tensor:
        """Transformer and head on a conv-tower output, read at the TSS (centre) bin.

        Parameters
        ----------
        h : torch.Tensor, shape=(B, C, n_bins)

        Returns
        -------
        torch.Tensor, shape=(B,)
            Only the TSS bin goes through the per-bin final block and head.
        """
        emb = enformer_embeddings_from_tower(self.enformer, h, center=1)
        return self.adapter.to_tracks(emb)[:, 0, 0]
