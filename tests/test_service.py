"""The HTTP service on a stand-in recommender: validation, batching, failure isolation, the token.

The service on a real bundle, as ``reason4rec serve`` in its own process, is
tested in ``tests/pipelines/test_predict.py``.
"""

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pandas as pd
import pytest
import uvicorn

from reason4rec.service import ServiceSettings, create_app


class StandIn:
    """Answers as a Recommender would, from the ids alone; records each predict_many call."""

    def __init__(self, delay: float = 0.05):
        self.calls, self.delay = [], delay
        self.bundle = None

    def predict_many(self, pairs):
        self.calls.append(list(pairs))
        time.sleep(self.delay)
        if any(item == "BREAKS" for _, item in pairs):
            raise RuntimeError("the model broke")
        return pd.DataFrame(
            [{"user_id": u, "item_id": i, "status": "ok", "reason": f"{u} on {i}", "rating": 1 + len(i) % 5, "distribution": [0.2] * 5,
              "user_history_size": 3, "item_history_size": 2} for u, i in pairs]
        )  # fmt: skip

    def recommend(self, user_id, candidates, k):
        items = candidates or ["A", "BB", "CCC"]
        ranked = sorted(items, key=lambda item: (-len(item), item))[:k]
        return pd.DataFrame(
            [{"user_id": user_id, "rank": r, "item_id": i, "rating": float(len(i)), "reason": "r", "distribution": [0.2] * 5, "status": "ok"}
             for r, i in enumerate(ranked, 1)]
        )  # fmt: skip

    def predict_from_histories(self, user_reviews, item_reviews, title):
        return {"user_id": "<given user>", "item_id": "<given item>", "status": "ok", "reason": title, "rating": 3.0, "distribution": [0.2] * 5,
                "user_history_size": len(user_reviews), "item_history_size": len(item_reviews)}  # fmt: skip


@contextmanager
def serving(app):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def call(url, body=None, raw: bytes | None = None, headers=None, method=None):
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"content-type": "application/json", **(headers or {})}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture
def service():
    model = StandIn()
    with serving(create_app(model, ServiceSettings(max_batch=8, batch_window_ms=20, max_candidates=3, max_body_bytes=4096))) as url:
        yield url, model


BAD_PREDICT_REQUESTS = [
    ({"user_id": "U1"}, "item_id"),  # a missing field
    ({"user_id": "U1", "item_id": "I1", "rating": 5}, "rating"),  # an unknown field
    ({"user_id": 7, "item_id": "I1"}, "user_id"),  # a wrong type
    ({"user_id": "U1", "item_id": "   "}, "item_id"),  # an empty id
    ({"user_id": "U1", "item_id": "x" * 201}, "item_id"),  # an overlong id
    ({"user_id": "U1", "item_id": "I1", "title": "T", "user_reviews": []}, "user_reviews"),  # two kinds of request at once
    ({"user_id": "U1", "item_id": "I1", "title": "T"}, "title"),  # a title that would be ignored
    ({"user_reviews": [{"title": "T", "rating": 9, "review": "ok"}], "item_reviews": [], "title": "T"}, "user_reviews.0.rating"),  # out of range
    ({"user_reviews": [{"title": "T", "review": "ok"}], "item_reviews": [], "title": "T"}, "user_reviews.0.rating"),  # a review without its rating
    ({"user_reviews": [{"title": "T", "rating": 4, "review": "ok"}], "item_reviews": [], "title": "T"}, "item_reviews"),  # no reviews on a side
    (["U1", "I1"], "body"),  # not an object
]
BAD_RECOMMEND_REQUESTS = [
    ({"user_id": "U1", "k": 0}, "k"),
    ({"user_id": "U1", "k": "3"}, "k"),
    ({"user_id": "U1", "candidates": ["A", "B", "C", "D"]}, "candidates"),  # over max_candidates
    ({"user_id": "U1", "candidates": ["A", ""]}, "candidates.1"),
    ({"candidates": ["A"]}, "user_id"),
]


def test_each_bad_input_is_a_4xx_naming_its_field_and_the_service_keeps_serving(service):
    url, _ = service
    for body, field in BAD_PREDICT_REQUESTS:
        status, reply = call(f"{url}/v1/predict", body)
        assert status == 422 and field in reply["error"], (body, reply)
        assert call(f"{url}/v1/predict", {"user_id": "U1", "item_id": "I1"})[0] == 200
    for body, field in BAD_RECOMMEND_REQUESTS:
        status, reply = call(f"{url}/v1/recommend", body)
        assert status == 422 and field in reply["error"], (body, reply)
        assert call(f"{url}/v1/recommend", {"user_id": "U1"})[0] == 200
    status, reply = call(f"{url}/v1/predict", raw=b'{"user_id": "U1", "item_id": ')
    assert status == 422 and reply["error"].startswith("body: JSON decode error")
    status, reply = call(f"{url}/v1/predict", raw=json.dumps({"user_id": "U1", "item_id": "I" * 5000}).encode())
    assert status == 413 and reply["error"] == "body: larger than the limit of 4096 bytes"
    assert call(f"{url}/v1/nothing", {})[0] == 404
    assert call(f"{url}/healthz")[1]["status"] == "ok"


def test_an_error_names_the_field_exactly(service):
    url, _ = service
    assert call(f"{url}/v1/predict", {"user_id": "U1", "item_id": ""})[1]["error"] == "item_id: String should have at least 1 character"
    assert call(f"{url}/v1/predict", {"user_id": "U1", "item_id": "I1", "rating": 5})[1]["error"] == "rating: Extra inputs are not permitted"


def test_concurrent_requests_are_answered_in_batches_each_its_own_answer(service):
    url, model = service
    pairs = [(f"U{n % 5}", "I" * (1 + n % 7)) for n in range(24)]
    with ThreadPoolExecutor(24) as pool:
        replies = list(pool.map(lambda pair: call(f"{url}/v1/predict", {"user_id": pair[0], "item_id": pair[1]}), pairs))
    for (user, item), (status, reply) in zip(pairs, replies):
        assert status == 200 and reply["reason"] == f"{user} on {item}" and reply["rating"] == 1 + len(item) % 5 and reply["status"] == "ok"
        assert reply["distribution"] == [0.2] * 5 and reply["seconds"] > 0
    answered = [pair for batch in model.calls for pair in batch]
    assert set(answered) == set(pairs)
    assert all(len(batch) <= 8 and len(batch) == len(set(batch)) for batch in model.calls)  # at most max_batch, repeats computed once
    assert len(model.calls) < len(pairs) / 2  # gathered, not one call per request


def test_a_request_that_breaks_the_model_gets_its_own_500_and_the_others_their_answers(service):
    url, model = service
    items = ["I1", "BREAKS", "I22", "I333"]
    with ThreadPoolExecutor(4) as pool:
        replies = list(pool.map(lambda item: call(f"{url}/v1/predict", {"user_id": "U1", "item_id": item}), items))
    assert [status for status, _ in replies] == [200, 500, 200, 200]
    assert "RuntimeError: the model broke" in replies[1][1]["error"]
    assert call(f"{url}/v1/predict", {"user_id": "U2", "item_id": "I1"})[0] == 200


def test_recommend_and_a_pair_described_by_its_reviews(service):
    url, _ = service
    status, reply = call(f"{url}/v1/recommend", {"user_id": "U1", "k": 2})
    assert status == 200 and [item["item_id"] for item in reply["items"]] == ["CCC", "BB"] and [item["rank"] for item in reply["items"]] == [1, 2]
    review = {"title": "Album", "rating": 4, "review": "warm vocals"}
    status, reply = call(f"{url}/v1/predict", {"user_reviews": [review, review], "item_reviews": [review], "title": "New album"})
    assert status == 200 and reply["reason"] == "New album" and (reply["user_history_size"], reply["item_history_size"]) == (2, 1)


def test_with_a_token_every_v1_route_needs_it():
    model = StandIn(delay=0)
    with serving(create_app(model, token="s3cret")) as url:
        body = {"user_id": "U1", "item_id": "I1"}
        assert call(f"{url}/v1/predict", body)[0] == 401
        assert call(f"{url}/v1/predict", body, headers={"authorization": "Bearer wrong"})[0] == 401
        assert call(f"{url}/v1/recommend", {"user_id": "U1"})[0] == 401
        assert call(f"{url}/v1/predict", body, headers={"authorization": "Bearer s3cret"})[0] == 200
        assert call(f"{url}/healthz")[0] == 200
