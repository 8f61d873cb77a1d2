"""The one table layer (core.tables): every schema round-trips bit-exactly, and a table read
back with a missing column, a non-number, NaN or inf where numbers must be finite, or a
repeated row is refused with the file, the row and the column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import InputError
from core.tables import (
    BASELINE_SUMMARY,
    COEFFICIENTS,
    ISM,
    PREDICTIONS,
    read_table,
    write_table,
)


def _valid(schema, n: int = 4, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    columns = {}
    for c in schema.columns:
        if c == "split":
            columns[c] = ["train", "tune", "test", "test"][:n]
        elif c in schema.text:
            columns[c] = (
                [f"NA{i}" if i % 2 else "NA" for i in range(n)]
                if c == "id"
                else [f"{c}{i}" for i in range(n)]
            )
        elif c in schema.integer:
            columns[c] = list(range(1, n + 1))
        else:
            columns[c] = rng.normal(size=n)
    return pd.DataFrame(columns)


SCHEMAS = [PREDICTIONS, COEFFICIENTS, ISM, BASELINE_SUMMARY]


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: s.what)
def test_round_trip_is_bit_exact_and_text_stays_text(schema, tmp_path):
    frame = _valid(schema)
    write_table(frame, tmp_path / "t.tsv", schema)
    back = read_table(tmp_path / "t.tsv", schema)
    assert list(back.columns) == list(schema.columns)
    for c in schema.columns:
        if c in schema.text:
            assert list(back[c]) == list(frame[c])  # "NA" is an id, not a missing value
        else:
            assert np.array_equal(back[c].to_numpy(np.float64), frame[c].to_numpy(np.float64))


@given(
    values=st.lists(
        st.floats(allow_nan=False, allow_infinity=False, width=64), min_size=1, max_size=20
    )
)
@settings(max_examples=40, deadline=None)
def test_any_finite_float_reads_back_exactly(tmp_path_factory, values):
    path = tmp_path_factory.mktemp("t") / "coef.tsv"
    n = len(values)
    frame = pd.DataFrame(
        {"chrom": ["1"] * n, "pos": range(1, n + 1), "id": ["."] * n, "ref": ["A"] * n,
         "alt": ["C"] * n, "coef": values}
    )  # fmt: skip
    write_table(frame, path, COEFFICIENTS)
    assert read_table(path, COEFFICIENTS)["coef"].tolist() == values


def _corrupt(schema, tmp_path, row: int, column: str, value: str):
    path = tmp_path / "t.tsv"
    write_table(_valid(schema), path, schema)
    lines = path.read_text().splitlines()
    header = lines[0].split("\t")
    cells = lines[row].split("\t")
    cells[header.index(column)] = value
    lines[row] = "\t".join(cells)
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    ("schema", "column", "value", "message"),
    [
        (PREDICTIONS, "predicted", "inf", r"column predicted holds inf in row 2"),
        (PREDICTIONS, "observed", "nan", r"column observed holds nan in row 2"),
        (PREDICTIONS, "predicted", "x", r"column predicted is not numeric \(row 2: 'x'\)"),
        (PREDICTIONS, "split", "validation", r"unknown split 'validation'"),
        (ISM, "score", "NaN", r"column score holds nan in row 2"),
        (ISM, "score", "-inf", r"column score holds -inf in row 2"),
        (ISM, "pos", "1.5", r"column pos holds 1.5 in row 2; it takes whole numbers"),
        (COEFFICIENTS, "coef", "", r"column coef holds nan in row 2"),
        (BASELINE_SUMMARY, "test_r2", "inf", r"column test_r2 holds inf in row 2"),
        (BASELINE_SUMMARY, "n_nonzero", "NA", r"column n_nonzero holds nan in row 2"),
    ],
)
def test_bad_values_are_refused_naming_file_row_and_column(
    tmp_path, schema, column, value, message
):
    path = _corrupt(schema, tmp_path, 2, column, value)
    with pytest.raises(InputError, match=message) as err:
        read_table(path, schema)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_undefined_r2_is_allowed_in_the_baseline_summary(tmp_path):
    path = _corrupt(BASELINE_SUMMARY, tmp_path, 2, "test_r2", "NA")
    assert np.isnan(read_table(path, BASELINE_SUMMARY)["test_r2"].iloc[1])


def test_missing_columns_and_repeated_rows_are_refused(tmp_path):
    frame = _valid(BASELINE_SUMMARY)
    (tmp_path / "a.tsv").write_text(frame.drop(columns="n_nonzero").to_csv(sep="\t", index=False))
    with pytest.raises(InputError, match=r"lacks the column.s. n_nonzero"):
        read_table(tmp_path / "a.tsv", BASELINE_SUMMARY)
    twice = pd.concat([frame, frame.iloc[[0]]])
    (tmp_path / "b.tsv").write_text(twice.to_csv(sep="\t", index=False))
    with pytest.raises(InputError, match="gene gene0, fold 1, model model0 occurs twice"):
        read_table(tmp_path / "b.tsv", BASELINE_SUMMARY)
    with pytest.raises(InputError, match="no coefficients at"):
        read_table(tmp_path / "none.tsv", COEFFICIENTS)


def test_float32_values_are_written_as_float32_prints_them(tmp_path):
    """ISM scores come out of the model as float32: the table holds their shortest float32
    text (what numpy prints), not the float64 expansion of each one's rounding error."""
    scores = np.array([0.0066247284, -2.1605260372161865, 1e-7, 3.3333333], dtype=np.float32)
    frame = pd.DataFrame(
        {"gene": "G", "fold": 0, "chrom": "1", "pos": [1, 2, 3, 4], "id": ".", "ref": "A",
         "alt": "C", "maf": 0.1, "tss_distance": [-1, 0, 1, 2], "score": scores}
    )  # fmt: skip
    write_table(frame, tmp_path / "ism.tsv", ISM)
    written = [line.split("\t")[-1] for line in (tmp_path / "ism.tsv").read_text().splitlines()[1:]]
    assert written == [str(s) for s in scores]  # numpy's shortest float32 text
    back = read_table(tmp_path / "ism.tsv", ISM)["score"].to_numpy()
    assert (back.astype(np.float32) == scores).all()
