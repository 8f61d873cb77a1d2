"""Same-gene batch sampler: composition hand-checked, invariants under Hypothesis."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import InputError
from variformer.data import eval_batches, group_by_gene
from variformer.sampler import SameGeneBatchSampler


def flat_genes(sizes):
    """Flat dataset indices per gene, gene-major: sizes (3, 5) -> [[0, 1, 2], [3, ..., 7]]."""
    starts = np.cumsum([0, *sizes])
    return [list(range(starts[g], starts[g + 1])) for g in range(len(sizes))]


def gene_of(gene_indices):
    return {i: g for g, ix in enumerate(gene_indices) for i in ix}


def test_composition_hand_checked():
    # batch 2 x accumulate 2 = effective 4: gene sizes 10 -> 8 used (2 steps), 20 -> 20 (5),
    # 7 -> 4 (1); 8 optimizer steps = 16 micro-batches of 2
    genes = flat_genes([10, 20, 7])
    s = SameGeneBatchSampler(genes, batch_size=2, accumulate_grad_batches=2, seed=1)
    assert s.people_per_epoch == [8, 20, 4]
    batches = list(s)
    assert len(batches) == len(s) == 16
    owner = gene_of(genes)
    assert all(len(b) == 2 for b in batches)
    batch_genes = [{owner[i] for i in b} for b in batches]
    assert all(len(bg) == 1 for bg in batch_genes)  # single-gene batches
    steps = [batch_genes[i] | batch_genes[i + 1] for i in range(0, 16, 2)]
    assert all(len(st_) == 1 for st_ in steps)  # single-gene optimizer steps
    used = [i for b in batches for i in b]
    assert len(used) == len(set(used)) == 32  # nobody twice in an epoch
    per_gene = [sum(owner[i] == g for i in used) for g in range(3)]
    assert per_gene == [8, 20, 4]
    # optimizer steps per gene: 2, 5, 1
    assert sorted(next(iter(x)) for x in steps) == [0, 0, 1, 1, 1, 1, 1, 2]


def test_no_shuffle_order_is_the_input_order():
    genes = flat_genes([5, 4])
    s = SameGeneBatchSampler(genes, batch_size=2, accumulate_grad_batches=2, shuffle=False)
    assert list(s) == [[0, 1], [2, 3], [5, 6], [7, 8]]


def test_epochs_shuffle_and_seed_is_deterministic():
    genes = flat_genes([64, 64, 64])
    a = SameGeneBatchSampler(genes, batch_size=8, accumulate_grad_batches=2, seed=3)
    b = SameGeneBatchSampler(genes, batch_size=8, accumulate_grad_batches=2, seed=3)
    first = list(a)
    assert first == list(b)  # same seed, same epoch
    a.set_epoch(1)
    second = list(a)
    assert second != first
    # the set of people per gene is the same each epoch (all 64 fit: 64 = 4 x 16)
    assert sorted(i for bt in second for i in bt) == sorted(i for bt in first for i in bt)
    b.set_epoch(1)
    assert list(b) == second
    c = SameGeneBatchSampler(genes, batch_size=8, accumulate_grad_batches=2, seed=4)
    assert list(c) != first


def test_fallback_for_short_genes_cycles_micro_batches():
    # 5 people, effective batch 2 x 4 = 8: largest multiple of 2 is 4 -> 2 distinct micro-batches,
    # cycled to fill the 4 slots of the optimizer step
    with pytest.warns(UserWarning, match="fewer train people than one effective batch"):
        s = SameGeneBatchSampler([list(range(5))], batch_size=2, accumulate_grad_batches=4, seed=0)
    batches = list(s)
    assert len(batches) == len(s) == 4
    assert batches[0] == batches[2] and batches[1] == batches[3]
    assert len(set(batches[0]) | set(batches[1])) == 4


def test_fewer_people_than_batch_is_an_input_error():
    with pytest.raises(InputError, match=r"smaller data\.batch_size"):
        SameGeneBatchSampler([list(range(10)), list(range(10, 13))], batch_size=4)


def test_ranks_get_equal_single_gene_shares():
    # 3 + 2 + 2 = 7 optimizer steps over 2 ranks -> padded to 8, 4 per rank
    genes = flat_genes([12, 8, 9])
    owner = gene_of(genes)
    ranks = [
        list(
            SameGeneBatchSampler(
                genes, batch_size=2, accumulate_grad_batches=2, seed=5, rank=r, world_size=2
            )
        )
        for r in range(2)
    ]
    assert len(ranks[0]) == len(ranks[1]) == 8
    for batches in ranks:
        for k in range(0, len(batches), 2):
            assert len({owner[i] for b in batches[k : k + 2] for i in b}) == 1
    seen = {i for batches in ranks for b in batches for i in b}
    assert len(seen) == 12 + 8 + 8  # every used person on some rank


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(4, 40), min_size=1, max_size=5),
    batch_size=st.integers(1, 4),
    accumulate=st.integers(1, 4),
    world_size=st.integers(1, 4),
    seed=st.integers(0, 3),
    epoch=st.integers(0, 3),
)
def test_invariants(sizes, batch_size, accumulate, world_size, seed, epoch):
    genes = flat_genes(sizes)
    owner = gene_of(genes)
    eff = batch_size * accumulate
    # independent count: per gene, optimizer steps = n // eff, or 1 for a short gene
    steps = sum(n // eff if n >= eff else 1 for n in sizes)
    per_rank = math.ceil(steps / world_size) * accumulate
    used_per_gene = [n // eff * eff if n >= eff else n // batch_size * batch_size for n in sizes]
    seen: dict[int, set] = {g: set() for g in range(len(sizes))}
    for rank in range(world_size):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # short genes warn
            s = SameGeneBatchSampler(
                genes,
                batch_size=batch_size,
                accumulate_grad_batches=accumulate,
                seed=seed,
                rank=rank,
                world_size=world_size,
            )
        s.set_epoch(epoch)
        batches = list(s)
        assert len(batches) == len(s) == per_rank
        for k in range(0, len(batches), accumulate):
            group = batches[k : k + accumulate]
            assert all(len(b) == batch_size == len(set(b)) for b in group)
            assert len({owner[i] for b in group for i in b}) == 1
            for b in group:
                seen[owner[b[0]]].update(b)
    assert [len(seen[g]) for g in range(len(sizes))] == used_per_gene


def test_eval_batches_cover_every_item_once():
    gene_index = np.array([0] * 5 + [1] * 3 + [2] * 4)
    shards = [eval_batches(gene_index, batch_size=2, rank=r, world_size=3) for r in range(3)]
    items = sorted(i for shard in shards for b in shard for i in b)
    assert items == list(range(12))
    for shard in shards:
        for b in shard:
            assert len(set(gene_index[b])) == 1 and len(b) <= 2
    # 3 + 2 + 2 = 7 batches dealt round-robin: 3, 2, 2
    assert [len(s) for s in shards] == [3, 2, 2]


def test_eval_batches_give_every_rank_a_batch_on_tiny_tune_sets():
    # 2 genes x 2 people in batches of 8 = 2 batches for 3 ranks -> one item per batch
    gene_index = np.array([0, 0, 1, 1])
    shards = [eval_batches(gene_index, batch_size=8, rank=r, world_size=3) for r in range(3)]
    assert [len(s) for s in shards] == [2, 1, 1]
    assert sorted(i for s in shards for b in s for i in b) == [0, 1, 2, 3]
    with pytest.raises(InputError, match="fewer devices"):
        eval_batches(gene_index, batch_size=8, rank=0, world_size=5)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 6), max_size=40))
def test_group_by_gene_matches_a_scan(genes):
    gene_index = np.array(genes, dtype=np.int64)
    groups = group_by_gene(gene_index, 7)
    assert len(groups) == 7
    for g in range(7):
        np.testing.assert_array_equal(groups[g], np.flatnonzero(gene_index == g))
