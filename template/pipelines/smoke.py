"""The smoke test a new deployment must pass before it gets any traffic.

The same request (code/score/sample-request.json: raw rows, as a client sends them) goes to the
local rehearsal's server and to every new deployment in CD, through the real scoring path.
The answer must have the response schema, one finite prediction per row, and arrive within
the latency budget.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from workspace import PROJECT_ROOT, StageError

SAMPLE_REQUEST = PROJECT_ROOT / "code" / "score" / "sample-request.json"
#: Seconds a scoring request may take, end to end, including the network.
LATENCY_BUDGET = 2.0


class SmokeTestFailed(StageError):
    """The deployment answered the sample request wrongly, or too slowly."""


def sample_request(path: Path = SAMPLE_REQUEST) -> dict:
    return json.loads(path.read_text())


def check_response(
    request: dict, response: str | bytes | dict, seconds: float, budget: float = LATENCY_BUDGET
) -> dict:
    """The parsed response when it passes; SmokeTestFailed naming the first problem."""
    if seconds > budget:
        raise SmokeTestFailed(f"the answer took {seconds:.2f}s, over the {budget:.2f}s budget")
    try:
        body = json.loads(response) if isinstance(response, (str, bytes)) else response
        if isinstance(body, str):  # azure-ai-ml's invoke returns the JSON text of the answer
            body = json.loads(body)
    except ValueError as error:
        raise SmokeTestFailed(f"the answer is not JSON: {error}") from None
    rows = len(request["data"])
    if not isinstance(body, dict) or set(body) != {"predictions", "probabilities"}:
        raise SmokeTestFailed(f"the answer is not {{predictions, probabilities}}: {body!r:.200}")
    predictions, probabilities = body["predictions"], body["probabilities"]
    if len(predictions) != rows or len(probabilities) != rows:
        raise SmokeTestFailed(f"{rows} rows sent, {len(predictions)} predictions returned")
    if any(p not in (0, 1) for p in predictions):
        raise SmokeTestFailed(f"predictions must be 0 or 1: {predictions}")
    for p in probabilities:
        if not isinstance(p, (int, float)) or not math.isfinite(p) or not 0.0 <= p <= 1.0:
            raise SmokeTestFailed(f"probability {p!r} is NaN, infinite or outside [0, 1]")
    return body
