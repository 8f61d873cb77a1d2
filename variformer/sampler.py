"""Same-gene batches: every micro-batch and every optimizer step holds one gene.

The pairwise term of the Variformer loss compares people within a batch, so a batch must hold
different people of one gene (paper, Methods "Training Variformer models"). Gradient
accumulation turns ``accumulate_grad_batches`` micro-batches into one optimizer step; the
same gene fills all of them, so an optimizer step is a single-gene step too.

Epoch definition (the paper's): for every train gene, the largest multiple of the effective
batch (``batch_size * accumulate_grad_batches``) of that gene's train people, each person
once; e.g. 512 of 536 people with an effective batch of 128. The unit of shuffling is a
*group*: ``accumulate_grad_batches`` consecutive micro-batches of one gene, i.e. exactly one
optimizer step. Groups of all genes are shuffled together each epoch.

Under DDP every rank builds the same global list of groups (same seed, same epoch) and takes
every ``world_size``-th group; the list is first padded by repeating groups from its start so
that all ranks get the same number of micro-batches and no rank waits for another forever.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler

from core.errors import InputError


class SameGeneBatchSampler(Sampler[list[int]]):
    """Yield batches of flat dataset indices, each batch from one gene.

    Parameters
    ----------
    gene_indices : sequence of sequence of int
        ``gene_indices[g]`` lists the flat dataset indices of gene ``g``'s train people
        (one index per person; the dataset maps an index to a (gene, person) item).
    batch_size : int
        People per micro-batch.
    accumulate_grad_batches : int
        Micro-batches per optimizer step; must equal the Trainer's setting.
    shuffle : bool
        Shuffle people within each gene and the order of groups, anew each epoch.
    seed : int
        Base seed; the epoch's permutation depends only on ``(seed, epoch)``, which is
        what keeps all DDP ranks in agreement.
    rank, world_size : int
        This process's global rank and the number of processes.

    Notes
    -----
    A gene with fewer train people than one effective batch falls back to the largest
    multiple of ``batch_size`` that fits (``k`` micro-batches, with a warning); its ``k``
    micro-batches are cycled to fill the ``accumulate_grad_batches`` slots of its optimizer
    step, so steps stay single-gene and ranks stay aligned (when ``k`` divides
    ``accumulate_grad_batches`` the step's gradient equals the mean over the ``k`` batches).
    A gene with fewer than ``batch_size`` people raises :class:`InputError`.
    """

    def __init__(
        self,
        gene_indices: Sequence[Sequence[int]],
        *,
        batch_size: int,
        accumulate_grad_batches: int = 1,
        shuffle: bool = True,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if batch_size < 1 or accumulate_grad_batches < 1:
            raise InputError(
                f"batch_size ({batch_size}) and accumulate_grad_batches ({accumulate_grad_batches}) must be >= 1"
            )
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside world_size {world_size}")
        if len(gene_indices) == 0:
            raise InputError("no train genes to sample from; give at least one gene")
        self.gene_indices = [np.asarray(ix, dtype=np.int64) for ix in gene_indices]
        self.batch_size = batch_size
        self.accumulate_grad_batches = accumulate_grad_batches
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        # where training is in the epoch (set by variformer.interrupts.ExactResume at each
        # step), and where a resumed run picks up: micro-batches of ``epoch`` already done
        self.position: tuple[int, int] = (0, 0)
        self._resume_at: tuple[int, int] | None = None
        effective = batch_size * accumulate_grad_batches
        # people used per gene and epoch: the largest multiple of the effective batch,
        # or (fallback) of batch_size
        self.people_per_epoch: list[int] = []
        short = []
        for g, ix in enumerate(self.gene_indices):
            n = len(ix)
            if n < batch_size:
                raise InputError(
                    f"gene #{g} has only {n} train people, fewer than batch_size={batch_size}; "
                    "set a smaller data.batch_size"
                )
            if n >= effective:
                self.people_per_epoch.append(n // effective * effective)
            else:
                self.people_per_epoch.append(n // batch_size * batch_size)
                short.append(g)
        if short:
            warnings.warn(
                f"{len(short)} gene(s) (e.g. #{short[0]}) have fewer train people than one effective "
                f"batch ({batch_size} x {accumulate_grad_batches}); they use the largest multiple of "
                f"batch_size instead and repeat those micro-batches to fill an optimizer step",
                stacklevel=2,
            )

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch that seeds the next iteration's order (Lightning calls it per epoch)."""
        self.epoch = int(epoch)

    def _groups(self) -> list[list[np.ndarray]]:
        """Global list of groups (one optimizer step each), identical on every rank."""
        rng = np.random.default_rng([self.seed, self.epoch])
        groups: list[list[np.ndarray]] = []
        for ix, n_use in zip(self.gene_indices, self.people_per_epoch):
            people = rng.permutation(ix) if self.shuffle else ix
            batches = people[:n_use].reshape(-1, self.batch_size)
            per_group = min(len(batches), self.accumulate_grad_batches)
            for start in range(0, len(batches), per_group):
                chunk = list(batches[start : start + per_group])
                # cycle a short gene's batches so the optimizer step stays one gene
                groups.append([chunk[i % len(chunk)] for i in range(self.accumulate_grad_batches)])
        if self.shuffle:
            groups = [groups[i] for i in rng.permutation(len(groups))]
        n_total = -(-len(groups) // self.world_size) * self.world_size
        return [groups[i % len(groups)] for i in range(n_total)]

    def __iter__(self) -> Iterator[list[int]]:
        skip = 0
        if self._resume_at is not None and self._resume_at[0] == self.epoch:
            skip = self._resume_at[1]  # a run resumed mid-epoch: these batches are done
        self._resume_at = None
        done = 0
        for group in self._groups()[self.rank :: self.world_size]:
            for batch in group:
                if done >= skip:
                    yield batch.tolist()
                done += 1

    def state_dict(self) -> dict:
        """Where training is: ``{"epoch": e, "consumed": micro-batches of epoch e done}``."""
        return {"epoch": int(self.position[0]), "consumed": int(self.position[1])}

    def load_state_dict(self, state: dict) -> None:
        """Resume: the next iteration over epoch ``state["epoch"]`` skips the batches done."""
        self._resume_at = (int(state.get("epoch", -1)), int(state.get("consumed", 0)))

    def __len__(self) -> int:
        """Micro-batches this rank yields per epoch."""
        n_groups = 0
        for n_use in self.people_per_epoch:
            n_batches = n_use // self.batch_size
            n_groups += -(-n_batches // min(n_batches, self.accumulate_grad_batches))
        per_rank = -(-n_groups // self.world_size)
        return per_rank * self.accumulate_grad_batches
