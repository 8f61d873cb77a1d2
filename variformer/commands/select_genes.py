"""``variformer select-genes``: the paper's train and test genes from elastic-net R2."""

from __future__ import annotations

import argparse

from variformer.commands._args import add_fold_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--baselines", required=True, help="baselines directory BL")
    parser.add_argument("--model", default="elastic_net", help="model under BL (elastic_net)")
    add_fold_argument(parser, "fold whose test R2 is used (0)", default=0)
    parser.add_argument(
        "--pool-genes-file", help="genes to draw train genes from (default: all in BL)"
    )
    parser.add_argument(
        "--test-pool-genes-file",
        help="genes to draw test genes from (default: the pool's genes not chosen for training)",
    )
    parser.add_argument("--bins", type=int, default=10, help="equal-width R2 bins (10)")
    parser.add_argument("--per-bin", type=int, default=30, help="train genes per bin (30)")
    parser.add_argument("--min-test-r2", type=float, default=0.1, help="test genes' R2 (0.1)")
    parser.add_argument("--max-test", type=int, default=100, help="at most this many test genes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out", required=True, help="directory for train_genes.txt, test_genes.txt, selection.tsv"
    )
    parser.add_argument("--force", action="store_true", help="replace --out")


def main(args: argparse.Namespace) -> int:
    from baselines.run import read_summary
    from baselines.select import select_genes
    from core.errors import InputError
    from core.fileio import atomic_dir, check_out_apart
    from data_prep.listfile import read_list

    check_out_apart(args.out, {
        "--baselines": args.baselines, "--pool-genes-file": args.pool_genes_file,
        "--test-pool-genes-file": args.test_pool_genes_file,
    })  # fmt: skip
    table = read_summary(args.baselines, args.model)
    table = table[table["fold"] == args.fold]
    if table.empty:
        raise InputError(f"{args.baselines}/{args.model}/summary.tsv has no fold {args.fold}")
    r2 = table.set_index("gene")["test_r2"]

    def pool(path):
        genes = read_list(path, what="genes")
        unknown = [g for g in genes if g not in r2.index]
        if unknown:
            raise InputError(
                f"{len(unknown)} genes of {path} have no {args.model} fit in fold {args.fold} "
                f"(first: {unknown[0]}); run `variformer baselines` on them first"
            )
        return r2.loc[genes]

    train_pool = pool(args.pool_genes_file) if args.pool_genes_file else r2
    test_pool = pool(args.test_pool_genes_file) if args.test_pool_genes_file else None
    chosen = select_genes(
        train_pool,
        n_bins=args.bins,
        per_bin=args.per_bin,
        test_pool=test_pool,
        min_test_r2=args.min_test_r2,
        max_test=args.max_test,
        seed=args.seed,
    )
    with atomic_dir(args.out, force=args.force) as tmp:
        (tmp / "train_genes.txt").write_text("".join(f"{g}\n" for g in chosen.train))
        (tmp / "test_genes.txt").write_text("".join(f"{g}\n" for g in chosen.test))
        chosen.table.to_csv(tmp / "selection.tsv", sep="\t", index=False, na_rep="NA")
    print(
        f"wrote {args.out}: {len(chosen.train)} train genes, {len(chosen.test)} test genes "
        f"(R2 >= {args.min_test_r2}) from fold {args.fold} of {args.model}"
    )
    return 0
