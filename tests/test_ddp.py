"""Two-process CPU DDP (gloo): every rank trains on whole same-gene optimizer steps, equally many.

The gathered tune metrics must also equal scikit-learn's on all tune people, though each rank
evaluated only its share.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from sklearn.metrics import r2_score

from tests.fakes import FakeDataset, tiny_config
from variformer.data import VariformerDataModule
from variformer.finetune import build_model
from variformer.system import VariformerSystem

GENES = ["G0", "G1", "G2"]
BATCH, ACCUMULATE = 4, 2


class RecordBatches(L.Callback):
    """Each rank writes the (gene, sample-index) content of its train batches to a JSON file."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.batches: list = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.batches.append(
            {"epoch": trainer.current_epoch, "genes": batch[2].tolist(), "y": batch[1].tolist()}
        )

    def on_validation_end(self, trainer, pl_module):  # after the module's epoch-end metrics
        self.tune_r2_mean = float(trainer.callback_metrics["tune_r2_mean"])

    def on_train_end(self, trainer, pl_module):
        path = Path(self.folder) / f"rank{trainer.global_rank}.json"
        path.write_text(
            json.dumps(
                {
                    "world": trainer.world_size,
                    "batches": self.batches,
                    "tune_r2_mean": self.tune_r2_mean,
                }
            )
        )


@pytest.mark.slow
def test_two_rank_ddp_batches_are_single_gene_and_balanced(tmp_path):
    # G1 lacks 5 people: 48 train people -> 6 steps of 8 for G0 and G2, 43 -> 40 -> 5 for G1:
    # 17 optimizer steps, padded to 18 -> 9 per rank (an odd total exercises the padding)
    ds = FakeDataset(genes=GENES, n_samples=60, seq_len=512, missing={"G1": 5})
    dm = VariformerDataModule(
        ds, genes=GENES, fold=0, batch_size=BATCH, accumulate_grad_batches=ACCUMULATE, seed=7
    )
    dm.setup("fit")
    n_train = [len(dm.people(g, "train")) for g in GENES]
    steps = sum(n // (BATCH * ACCUMULATE) for n in n_train)
    assert n_train == [48, 43, 48] and steps == 17
    config = tiny_config()
    torch.manual_seed(0)
    system = VariformerSystem(build_model(config), gene_names=GENES, learning_rate=1e-3)
    trainer = L.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp_spawn",
        max_epochs=2,
        accumulate_grad_batches=ACCUMULATE,
        use_distributed_sampler=False,
        callbacks=[RecordBatches(str(tmp_path))],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        num_sanity_val_steps=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(system, datamodule=dm)

    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert [r["world"] for r in ranks] == [2, 2]
    per_rank = [[b for b in r["batches"] if b["epoch"] == 0] for r in ranks]
    # equal numbers of micro-batches: ceil(17 / 2) = 9 steps x 2 each, no rank waits
    assert [len(b) for b in per_rank] == [18, 18]
    assert len([b for b in ranks[0]["batches"] if b["epoch"] == 1]) == 18
    targets = {
        g: set(np.round(ds.expression(g).loc[dm.people(g, "train")].to_numpy(), 5)) for g in GENES
    }
    covered = {g: set() for g in range(3)}
    for batches in per_rank:
        for b in batches:
            assert len(b["genes"]) == BATCH and len(set(b["genes"])) == 1  # one gene per batch
        for k in range(0, len(batches), ACCUMULATE):
            step = batches[k : k + ACCUMULATE]
            assert len({g for b in step for g in b["genes"]}) == 1  # one gene per optimizer step
            gene = step[0]["genes"][0]
            for b in step:
                assert set(np.round(b["y"], 5)) <= targets[GENES[gene]]
                covered[gene].update(np.round(b["y"], 5))
    # together the ranks saw every used person: 48, 40 and 48 distinct targets
    assert [len(covered[g]) for g in range(3)] == [48, 40, 48]

    # the tune metric logged on each rank is the same and equals sklearn's on all tune people
    assert ranks[0]["tune_r2_mean"] == pytest.approx(ranks[1]["tune_r2_mean"], abs=1e-7)
    model = system.model.eval()  # ddp_spawn copies the trained weights back
    r2s = []
    with torch.no_grad():
        for gene in GENES:
            people = dm.people(gene, "tune")
            pred = model(torch.from_numpy(ds.sequences(gene, people))).numpy()
            r2s.append(r2_score(ds.expression(gene).loc[people].to_numpy(), pred))
    assert ranks[0]["tune_r2_mean"] == pytest.approx(float(np.mean(r2s)), abs=1e-4)
