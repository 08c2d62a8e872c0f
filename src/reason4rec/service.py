"""A trained Reason4Rec over HTTP: ``reason4rec serve --bundle PATH``.

FastAPI on uvicorn: the routes are plain functions of a
:class:`~reason4rec.recommender.Recommender`, validated by pydantic, with
OpenAPI docs at ``/docs``. (kedro-boot would run the service inside a Kedro
session; a bundle needs no project, so the service does not either.)

::

    POST /v1/predict    {"user_id", "item_id"}                      a known or new pair
                        {"user_reviews", "item_reviews", "title"}   a pair described by its reviews
                        -> {"reason", "rating", "distribution", "status", "seconds", ...}
    POST /v1/recommend  {"user_id", "candidates"?, "k"?}  -> {"user_id", "items": [...], "seconds"}
    GET  /healthz       the bundle it serves and the queue

**Why batches.** A prediction is a reason generated token by token, then one
scoring pass; a forward pass over 16 prompts costs far less than 16 passes over
one. Concurrent ``/v1/predict`` requests are therefore gathered for up to
``batch_window_ms`` (or until ``max_batch`` are waiting) and answered by one
:meth:`~reason4rec.recommender.Recommender.predict_many` call; while a batch
runs, the next one gathers. One worker thread owns the engine, so no two calls
share the model at once. Identical pairs in a batch are computed once. If a
batch fails, its requests are retried one by one, so a request that breaks the
model gets its own 500 and the others their answers.

Bad input is a 4xx whose ``error`` names the field (``user_id: ...``), before
it reaches the model: unknown fields, wrong types, empty ids, more than
``max_candidates`` candidates, a body over ``max_body_bytes`` (413). With
``REASON4REC_API_TOKEN`` set, ``/v1/*`` needs ``Authorization: Bearer <token>``;
the token is compared in constant time and never logged.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

logger = logging.getLogger(__name__)

TOKEN_ENV = "REASON4REC_API_TOKEN"
Id = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


@dataclass(frozen=True)
class ServiceSettings:
    max_batch: int = 16  # pairs per predict_many call (the engine's batch size is a good value)
    batch_window_ms: float = 10.0  # how long the first request of a batch waits for company
    max_candidates: int = 1000  # per /v1/recommend request
    max_body_bytes: int = 1 << 20  # 1 MiB
    max_reviews: int = 50  # per side, for a pair described by its reviews


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Review(Strict):
    title: Annotated[str, StringConstraints(max_length=500)]
    rating: Annotated[float, Field(ge=1, le=5)]
    review: Annotated[str, StringConstraints(max_length=20_000)]
    timestamp: int | None = None


class PredictRequest(Strict):
    """A known or new pair by its ids, or a pair described by reviews given in the call."""

    user_id: Id | None = None
    item_id: Id | None = None
    user_reviews: list[Review] | None = None
    item_reviews: list[Review] | None = None
    title: Annotated[str, StringConstraints(min_length=1, max_length=500)] | None = None

    @model_validator(mode="after")
    def one_kind(self) -> PredictRequest:
        by_ids = self.user_id is not None or self.item_id is not None
        by_reviews = self.user_reviews is not None or self.item_reviews is not None
        if by_ids and by_reviews:
            raise ValueError("give user_id and item_id, or user_reviews, item_reviews and title, not both")
        if by_reviews:
            missing = [name for name in ("user_reviews", "item_reviews", "title") if getattr(self, name) is None]
            if missing:
                raise ValueError(f"a pair described by its reviews needs {', '.join(missing)}")
        else:
            missing = [name for name in ("user_id", "item_id") if getattr(self, name) is None]
            if missing:
                raise ValueError(f"missing {' and '.join(missing)}")
            if self.title is not None:
                raise ValueError("title goes only with user_reviews and item_reviews (an item id's title comes from the bundle's data)")
        return self


class RecommendRequest(Strict):
    user_id: Id
    candidates: list[Id] | None = None
    k: Annotated[int, Field(ge=1)] = 10


def prediction_fields(row: dict[str, Any]) -> dict[str, Any]:
    """A prediction row's item, reason, rating, distribution and status as JSON has them (no NaN, plain floats)."""
    rating, distribution = row.get("rating"), row.get("distribution")
    return {
        "item_id": row.get("item_id"),
        "reason": row.get("reason"),
        "rating": None if rating is None or rating != rating else float(rating),
        "distribution": None if distribution is None else [float(p) for p in distribution],
        "status": row.get("status"),
    }


def answer(row: dict[str, Any], seconds: float) -> dict[str, Any]:
    """A prediction row as ``/v1/predict`` answers it."""
    return {
        "user_id": row.get("user_id"),
        **prediction_fields(row),
        "user_history_size": int(row.get("user_history_size", 0)),
        "item_history_size": int(row.get("item_history_size", 0)),
        "seconds": round(seconds, 4),
    }


class PredictionBatcher:
    """Gathers concurrent pair requests into ``predict_many``-sized batches on one worker thread.

    ``predict_many(pairs)`` takes a list of (user_id, item_id) and returns one
    row (a dict) per pair, in order.
    """

    def __init__(self, predict_many: Callable[[list[tuple[str, str]]], list[dict[str, Any]]], worker: ThreadPoolExecutor, settings: ServiceSettings):
        self.predict_many, self.worker, self.settings = predict_many, worker, settings
        self.queue: asyncio.Queue[tuple[tuple[str, str], asyncio.Future]] = asyncio.Queue()
        self.batches = self.pairs = 0

    async def predict(self, pair: tuple[str, str]) -> dict[str, Any]:
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((pair, future))
        return await future

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self.queue.get()]
            deadline = loop.time() + self.settings.batch_window_ms / 1000
            while len(batch) < self.settings.max_batch:
                try:
                    batch.append(self.queue.get_nowait() if loop.time() >= deadline else await asyncio.wait_for(self.queue.get(), deadline - loop.time()))
                except (asyncio.QueueEmpty, TimeoutError):
                    break
            batch = [(pair, future) for pair, future in batch if not future.cancelled()]
            if batch:
                await self._answer(batch)

    async def _answer(self, batch: list[tuple[tuple[str, str], asyncio.Future]]) -> None:
        loop = asyncio.get_running_loop()
        unique = list(dict.fromkeys(pair for pair, _ in batch))
        started = time.perf_counter()
        try:
            rows = dict(zip(unique, await loop.run_in_executor(self.worker, self.predict_many, unique)))
        except Exception:
            logger.exception("a batch of %d pairs failed; answering its requests one by one", len(unique))
            rows = {}
            for pair in unique:
                try:
                    rows[pair] = (await loop.run_in_executor(self.worker, self.predict_many, [pair]))[0]
                except Exception as error:  # this request's own failure, answered as a 500
                    rows[pair] = error
        self.batches, self.pairs = self.batches + 1, self.pairs + len(unique)
        logger.info("answered %d requests (%d pairs) in %.2f s", len(batch), len(unique), time.perf_counter() - started)
        for pair, future in batch:
            if not future.done():
                result = rows[pair]
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)


class BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes is answered 413 before it is parsed."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await self._refuse(send)
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return await self.app(scope, _replay([message]), send)
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                return await self._refuse(send)
            more = message.get("more_body", False)
        return await self.app(scope, _replay([{"type": "http.request", "body": b"".join(chunks), "more_body": False}], receive), send)

    async def _refuse(self, send):
        body = json.dumps({"error": f"body: larger than the limit of {self.limit} bytes"}).encode()
        await send({"type": "http.response.start", "status": 413, "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def _replay(messages: list[dict], then=None):
    async def receive():
        if messages:
            return messages.pop(0)
        return await then() if then else {"type": "http.disconnect"}

    return receive


def _field_errors(error: RequestValidationError) -> JSONResponse:
    """422 with ``error`` naming each field (``user_id: String should have at least 1 character``)."""
    problems = []
    for detail in error.errors():
        location = "body" if detail["type"] == "json_invalid" else ".".join(str(part) for part in detail["loc"] if part != "body") or "body"
        message = detail["msg"].removeprefix("Value error, ")
        if detail["type"] == "json_invalid":
            message += f" ({detail.get('ctx', {}).get('error', 'not JSON')} at character {detail['loc'][-1]})"
        problems.append(f"{location}: {message}")
    return JSONResponse(status_code=422, content={"error": "; ".join(problems), "detail": json.loads(json.dumps(error.errors(), default=str))})


def create_app(recommender, settings: ServiceSettings = ServiceSettings(), token: str | None = None) -> FastAPI:
    """The service's app on ``recommender`` (a :class:`~reason4rec.recommender.Recommender`, or
    anything with its ``predict_many``, ``recommend``, ``predict_from_histories`` and ``bundle``)."""
    worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reason4rec-engine")
    batcher = PredictionBatcher(lambda pairs: recommender.predict_many(pairs).to_dict("records"), worker, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        task = asyncio.create_task(batcher.run())
        yield
        task.cancel()
        worker.shutdown(wait=False, cancel_futures=True)

    def authorized(request: Request) -> None:
        if token is None:
            return
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            raise HTTPException(status_code=401, detail="a valid 'Authorization: Bearer <token>' header is required", headers={"WWW-Authenticate": "Bearer"})

    app = FastAPI(title="reason4rec", summary="Reason4Rec: a rating with its reason", lifespan=lifespan)
    app.add_exception_handler(RequestValidationError, lambda request, error: _field_errors(error))
    app.add_exception_handler(StarletteHTTPException, lambda request, error: JSONResponse(status_code=error.status_code, content={"error": error.detail}, headers=error.headers))
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    manifest = getattr(getattr(recommender, "bundle", None), "manifest", {}) or {}

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {
            "status": "ok",
            "base": manifest.get("base", {}).get("name") if isinstance(manifest.get("base"), dict) else manifest.get("base"),
            "trained_on": manifest.get("trained_on"),
            "queued": batcher.queue.qsize(),
            "batches": batcher.batches,
            "pairs": batcher.pairs,
        }

    @app.post("/v1/predict", dependencies=[Depends(authorized)])
    async def predict(request: PredictRequest) -> dict[str, Any]:
        started = time.perf_counter()
        if request.user_reviews is not None:
            for side in ("user_reviews", "item_reviews"):
                if not 1 <= len(getattr(request, side)) <= settings.max_reviews:
                    raise HTTPException(status_code=422, detail=f"{side}: give 1 to {settings.max_reviews} reviews")
            row = await asyncio.get_running_loop().run_in_executor(
                worker, recommender.predict_from_histories,
                [review.model_dump() for review in request.user_reviews], [review.model_dump() for review in request.item_reviews], request.title,
            )  # fmt: skip
        else:
            row = await _or_500(batcher.predict((request.user_id, request.item_id)))
        return answer(row, time.perf_counter() - started)

    @app.post("/v1/recommend", dependencies=[Depends(authorized)])
    async def recommend(request: RecommendRequest) -> dict[str, Any]:
        started = time.perf_counter()
        if request.candidates is not None and not 1 <= len(request.candidates) <= settings.max_candidates:
            raise HTTPException(status_code=422, detail=f"candidates: give 1 to {settings.max_candidates} item ids (or none: every item the user has not rated)")
        table = await _or_500(asyncio.get_running_loop().run_in_executor(worker, recommender.recommend, request.user_id, request.candidates, request.k))
        rows = table.to_dict("records")
        rejected = [row["status"] for row in rows if str(row["status"]).startswith("rejected")]
        if rejected:
            raise HTTPException(status_code=422, detail=f"user_id: {rejected[0].removeprefix('rejected: ')}")
        items = [{"rank": int(row["rank"]), **prediction_fields(row)} for row in rows]
        return {"user_id": request.user_id, "items": items, "seconds": round(time.perf_counter() - started, 4)}

    return app


async def _or_500(awaitable):
    try:
        return await awaitable
    except Exception as error:
        logger.exception("a request failed")
        raise HTTPException(status_code=500, detail=f"the model failed on this request: {type(error).__name__}: {error}") from error


def main(argv: Sequence[str] | None = None) -> None:
    """``reason4rec serve``: the bundle's Recommender on uvicorn."""
    parser = argparse.ArgumentParser(prog="reason4rec serve", description="Serve a reason4rec bundle over HTTP (OpenAPI docs at /docs).")
    parser.add_argument("--bundle", required=True, help="a bundle folder (kedro run --pipelines export_bundle writes data/06_models/bundle)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--max-batch", type=int, default=ServiceSettings.max_batch, help="pairs per batch (default %(default)s)")
    parser.add_argument("--batch-window-ms", type=float, default=ServiceSettings.batch_window_ms, help="how long a batch gathers (default %(default)s ms)")
    parser.add_argument("--max-candidates", type=int, default=ServiceSettings.max_candidates)
    parser.add_argument("--max-body-bytes", type=int, default=ServiceSettings.max_body_bytes)
    parser.add_argument("--backend", choices=("local", "server"), default="local", help="local: the experts in this process; server: on an OpenAI-compatible server")
    parser.add_argument("--base-url", help="--backend server: the server's /v1 address (vLLM --enable-lora --lora-modules ...)")
    parser.add_argument("--served-base", help="--backend server: the base's model name on the server (default: the bundle's base name)")
    parser.add_argument("--no-verify", action="store_true", help="skip checking the bundle's checksums at start")
    args = parser.parse_args(argv)
    for name in ("max_batch", "port", "max_candidates", "max_body_bytes"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.batch_window_ms < 0:
        parser.error("--batch-window-ms must be at least 0")
    if args.backend == "server" and not args.base_url:
        parser.error("--backend server needs --base-url")

    # A progress bar per batch would drown the log (each batch logs its size and time); tqdm reads this at import.
    os.environ.setdefault("TQDM_DISABLE", "1")
    import uvicorn

    from reason4rec.recommender import Recommender

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    inference = {"backend": args.backend, "base_url": args.base_url, "served_base": args.served_base, "batch_size": args.max_batch}
    recommender = Recommender.from_bundle(args.bundle, inference=inference, verify=not args.no_verify)
    token = os.environ.get(TOKEN_ENV) or None
    settings = ServiceSettings(args.max_batch, args.batch_window_ms, args.max_candidates, args.max_body_bytes)
    logger.info("serving %s on http://%s:%d (batches of up to %d, %g ms window; %s)", args.bundle, args.host, args.port,
                settings.max_batch, settings.batch_window_ms, f"bearer token from {TOKEN_ENV} required" if token else "no token")  # fmt: skip
    uvicorn.run(create_app(recommender, settings, token), host=args.host, port=args.port, log_level="info")
