"""Feature engineering and the train/test split (code/prep)."""

import numpy as np
import pandas as pd
import pytest

from prep import RATIO_FEATURES, TARGET, engineer_features, load_raw_data, snake_case, split


def raw_rows(**overrides) -> pd.DataFrame:
    """One raw row with the bundled dataset's column names."""
    row = {
        "mean radius": 10.0,
        "worst radius": 15.0,
        "mean area": 300.0,
        "mean perimeter": 60.0,
        "mean compactness": 0.1,
        "worst compactness": 0.25,
        "mean texture": 20.0,
    }
    row.update(overrides)
    return pd.DataFrame([row])


def test_snake_case_turns_dataset_names_into_identifiers():
    assert snake_case("mean concave points") == "mean_concave_points"
    assert snake_case(" Worst Fractal-Dimension ") == "worst_fractal_dimension"


def test_ratio_features_are_computed_from_their_columns():
    features = engineer_features(raw_rows())
    assert features.loc[0, "radius_growth"] == pytest.approx(1.5)
    assert features.loc[0, "area_per_perimeter"] == pytest.approx(5.0)
    assert features.loc[0, "compactness_growth"] == pytest.approx(2.5)
    assert "mean_texture" in features.columns


def test_a_zero_denominator_gives_zero_not_inf_or_nan():
    features = engineer_features(raw_rows(**{"mean radius": 0.0, "mean perimeter": 0.0}))
    assert features.loc[0, "radius_growth"] == 0.0
    assert features.loc[0, "area_per_perimeter"] == 0.0
    assert np.isfinite(features[list(RATIO_FEATURES)].to_numpy()).all()


def test_engineering_leaves_the_input_frame_alone():
    raw = raw_rows()
    before = raw.copy()
    engineer_features(raw)
    pd.testing.assert_frame_equal(raw, before)


def test_missing_input_columns_are_named():
    with pytest.raises(ValueError, match="mean_area"):
        engineer_features(raw_rows().drop(columns=["mean area"]))


def test_bundled_data_has_no_missing_or_infinite_features():
    features = engineer_features(load_raw_data())
    numeric = features.drop(columns=[TARGET]).to_numpy(dtype=float)
    assert np.isfinite(numeric).all()
    assert set(features[TARGET].unique()) == {0, 1}


def test_split_is_stratified_and_disjoint():
    frame = engineer_features(load_raw_data()).reset_index(names="row_id")
    train, test = split(frame, test_size=0.25, seed=7)
    assert len(train) + len(test) == len(frame)
    assert set(train["row_id"]).isdisjoint(test["row_id"])
    overall = frame[TARGET].mean()
    assert abs(train[TARGET].mean() - overall) < 0.02
    assert abs(test[TARGET].mean() - overall) < 0.02
    assert len(test) == pytest.approx(0.25 * len(frame), abs=1)


def test_split_is_reproducible_with_the_same_seed():
    frame = engineer_features(load_raw_data())
    first, _ = split(frame, seed=3)
    second, _ = split(frame, seed=3)
    other, _ = split(frame, seed=4)
    pd.testing.assert_frame_equal(first, second)
    assert not first.equals(other)


@pytest.mark.parametrize("test_size", [0.0, 1.0, -0.1])
def test_split_rejects_impossible_test_sizes(test_size):
    with pytest.raises(ValueError, match="test_size"):
        split(engineer_features(load_raw_data()), test_size=test_size)


def test_raw_data_from_a_csv_needs_a_target_column(tmp_path):
    path = tmp_path / "raw.csv"
    raw_rows().to_csv(path, index=False)
    with pytest.raises(ValueError, match="target"):
        load_raw_data(path)
