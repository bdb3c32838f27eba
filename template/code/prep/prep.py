"""Prepare the training data: clean column names, engineer features, split train and test.

Reads a CSV with a `target` column when `--raw-data` is given; otherwise the breast cancer
dataset bundled with scikit-learn (no download). Writes `train.csv`, `test.csv`,
`schema.json` (feature columns and target) and an `MLTable` file (so the folder can be
registered as a table) into `--output-dir`. With `--reference-dir`, the raw training rows
(the columns a client sends, before feature engineering) go there too, with an `MLTable`: the
pipeline registers that folder as the versioned data asset the drift monitor compares the
deployment's collected inputs with.

The scoring script imports `engineer_features` from this module, so training and serving
compute features the same way.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

TARGET = "target"

#: Lets Azure ML read the folder as an `mltable` data asset (train.csv only).
MLTABLE = """\
paths:
  - file: ./train.csv
transformations:
  - read_delimited:
      delimiter: ","
      encoding: utf8
      header: all_files_same_headers
"""

#: Columns the engineered features are built from (after snake_case renaming).
REQUIRED_COLUMNS = (
    "mean_radius",
    "worst_radius",
    "mean_area",
    "mean_perimeter",
    "mean_compactness",
    "worst_compactness",
)

#: Engineered features: name -> (numerator, denominator).
RATIO_FEATURES = {
    "radius_growth": ("worst_radius", "mean_radius"),
    "area_per_perimeter": ("mean_area", "mean_perimeter"),
    "compactness_growth": ("worst_compactness", "mean_compactness"),
}


def snake_case(name: str) -> str:
    """`mean concave points` -> `mean_concave_points`."""
    return re.sub(r"[^0-9a-z]+", "_", name.strip().lower()).strip("_")


def load_raw_data(raw_data: Path | None = None) -> pd.DataFrame:
    """The raw table with a `target` column: the given CSV, or the bundled dataset."""
    if raw_data is not None:
        frame = pd.read_csv(raw_data)
        if TARGET not in frame.columns:
            raise ValueError(f"{raw_data}: no '{TARGET}' column")
        return frame
    return load_breast_cancer(as_frame=True).frame


def engineer_features(frame: pd.DataFrame) -> pd.DataFrame:
    """Snake_case column names plus ratio features; the input frame is not modified.

    A zero denominator gives 0.0, never inf or NaN, so a malformed row cannot poison training
    or a prediction.
    """
    features = frame.rename(columns=snake_case)
    missing = [column for column in REQUIRED_COLUMNS if column not in features.columns]
    if missing:
        raise ValueError(f"missing input columns: {', '.join(missing)}")
    for name, (numerator, denominator) in RATIO_FEATURES.items():
        top = features[numerator].astype(float)
        bottom = features[denominator].astype(float)
        ratio = np.divide(top, bottom, out=np.zeros(len(features)), where=bottom.to_numpy() != 0)
        features[name] = ratio
    return features


def split(
    frame: pd.DataFrame, test_size: float = 0.2, seed: int = 42
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A stratified train/test split, so both halves keep the class balance."""
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be between 0 and 1 (got {test_size})")
    train, test = train_test_split(
        frame, test_size=test_size, random_state=seed, stratify=frame[TARGET]
    )
    return train.reset_index(drop=True), test.reset_index(drop=True)


def prepare(
    output_dir: Path,
    raw_data: Path | None = None,
    test_size: float = 0.2,
    seed: int = 42,
    reference_dir: Path | None = None,
) -> dict[str, Path]:
    """Run the whole step; returns the files written."""
    # Split the raw rows, then engineer: the reference data keeps the columns clients send.
    raw_train, raw_test = split(load_raw_data(raw_data).dropna(), test_size=test_size, seed=seed)
    train, test = engineer_features(raw_train), engineer_features(raw_test)
    output_dir.mkdir(parents=True, exist_ok=True)
    written = {
        "train": output_dir / "train.csv",
        "test": output_dir / "test.csv",
        "schema": output_dir / "schema.json",
        "mltable": output_dir / "MLTable",
    }
    train.to_csv(written["train"], index=False)
    test.to_csv(written["test"], index=False)
    schema = {
        "target": TARGET,
        "features": [column for column in train.columns if column != TARGET],
        "rows": {"train": len(train), "test": len(test)},
    }
    written["schema"].write_text(json.dumps(schema, indent=2))
    written["mltable"].write_text(MLTABLE)
    if reference_dir is not None:
        reference_dir.mkdir(parents=True, exist_ok=True)
        raw_train.to_csv(reference_dir / "train.csv", index=False)
        (reference_dir / "MLTable").write_text(MLTABLE)
        written["reference"] = reference_dir / "train.csv"
    return written


def build_parser() -> argparse.ArgumentParser:
    """The command line; the component in .cloud/components/ calls it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw-data", type=Path, help="CSV with a 'target' column (optional)")
    parser.add_argument("--output-dir", type=Path, required=True, help="where the split goes")
    parser.add_argument("--test-size", type=float, default=0.2, help="share of rows held out")
    parser.add_argument("--seed", type=int, default=42, help="random seed of the split")
    parser.add_argument(
        "--reference-dir", type=Path, help="where the raw training rows go (drift reference)"
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    written = prepare(
        args.output_dir, args.raw_data, args.test_size, args.seed, args.reference_dir
    )
    print(json.dumps({name: str(path) for name, path in written.items()}))


if __name__ == "__main__":
    main()
