"""The local rehearsal (pipelines/rehearse.py): train, gate against the local champion,
register in the local MLflow registry, serve with azmlinfsrv, answer the CD smoke request."""

from __future__ import annotations

import json

import pytest

import rehearse
import smoke


def test_the_smoke_check_catches_what_cd_must_not_let_through():
    request = smoke.sample_request()
    rows = len(request["data"])
    good = {"predictions": [1] * rows, "probabilities": [0.5] * rows}
    assert smoke.check_response(request, json.dumps(good), 0.1) == good
    bad_answers = {
        "NaN": {"predictions": [1] * rows, "probabilities": [float("nan")] * rows},
        "rows": {"predictions": [1], "probabilities": [0.5]},
        "predictions, probabilities": {"error": "boom"},
    }
    for reason, answer in bad_answers.items():
        with pytest.raises(smoke.SmokeTestFailed, match=reason):
            smoke.check_response(request, json.dumps(answer), 0.1)
    with pytest.raises(smoke.SmokeTestFailed, match="budget"):
        smoke.check_response(request, json.dumps(good), smoke.LATENCY_BUDGET + 1)


def test_the_sample_request_is_what_clients_send():
    from prep import load_raw_data

    request = smoke.sample_request()
    raw_columns = set(load_raw_data().columns) - {"target"}
    assert request["data"] and all(set(row) == raw_columns for row in request["data"])


@pytest.mark.slow
def test_the_rehearsal_ends_with_the_served_model_answering(tmp_path, monkeypatch):
    # Its own MLflow store: the rehearsal registers there, twice.
    store = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    first = rehearse.rehearse(tmp_path / "first")
    assert first["champion"] is None and first["registered"] == "1"
    assert first["served"] == "1"
    rows = len(smoke.sample_request()["data"])
    assert len(first["answer"]["predictions"]) == rows
    # Same data, same model: it ties with the champion, so nothing new is registered and the
    # champion keeps serving.
    second = rehearse.rehearse(tmp_path / "second", in_process=True)
    assert second["champion"] == "1" and second["registered"] is None
    assert second["served"] == "1"
