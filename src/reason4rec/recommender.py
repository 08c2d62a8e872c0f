"""A trained Reason4Rec in plain Python, from a bundle, without a Kedro project::

    from reason4rec import Recommender

    model = Recommender.from_bundle("data/06_models/bundle")
    model.predict("U00049", "I00009")            # {"reason", "rating", "distribution", "status", ...}
    model.predict_many([("U00049", "I00009"), ("U00033", "I00010")])
    model.recommend("U00049", k=5)               # unrated items, ranked, with reasons
    model.predict_from_histories(user_reviews, item_reviews, title="Some Album")

    # reviews given in a call summarized by a teacher instead of the bundle's summarizer
    model = Recommender.from_bundle("data/06_models/bundle", teacher={"backend": "openai", "model": "gpt-4o-mini"})

Every answer goes through :mod:`reason4rec.prediction`, as the ``predict`` and
``recommend`` pipelines' do, so a bundle answers as the run it came from.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import logging
import os

import pandas as pd

from reason4rec.bundle import ModelBundle, read_bundle
from reason4rec.contexts import TARGET_COLUMNS
from reason4rec.completions import CompletionClient
from reason4rec.llm.engine import InferenceEngine, load_engine
from reason4rec.parameters import Prompting, SummaryGeneration, SummaryTeacher, TeacherConfig, prompting_of
from reason4rec.prediction import predict_requests, prediction_contexts, rank_recommendations, recommendation_candidates
from reason4rec.summaries import summarizer_table, teacher_summary_table
from reason4rec.teacher import teacher_client

logger = logging.getLogger(__name__)

GIVEN_USER, GIVEN_ITEM = "<given user>", "<given item>"
LOCAL_INFERENCE = {"backend": "local", "batch_size": 16, "cache_path": None}


class Recommender:
    def __init__(self, bundle: ModelBundle, engine: InferenceEngine, teacher: CompletionClient | None = None):
        self.bundle, self.engine, self.teacher = bundle, engine, teacher
        self.prompting: Prompting = prompting_of(bundle.settings["prompting"])
        self.generation: dict[str, Any] = bundle.settings["reason_generation"]

    @classmethod
    def from_bundle(
        cls, path: str | Path, inference: Mapping[str, Any] | None = None, verify: bool = True, teacher: Mapping[str, Any] | None = None,
        teacher_api_key_env: str = "OPENAI_API_KEY",
    ) -> Recommender:  # fmt: skip
        """Load the bundle at ``path`` (checking its checksums unless ``verify`` is false) on
        an engine: in this process by default, or ``inference`` as ``llm.inference`` takes
        it (``{"backend": "server", "base_url": ...}`` for the experts served by vLLM).

        ``teacher``, a ``teacher:`` block as ``conf/base/globals.yml`` has it (its key read
        from ``teacher_api_key_env``), summarizes the reviews given to
        :meth:`predict_from_histories` instead of the bundle's summarizer, as a run with
        ``summarize.use_teacher_summaries`` summarizes its histories."""
        settings = None if teacher is None else TeacherConfig.from_dict(dict(teacher))
        if settings is not None and settings.mode == "batch":
            raise ValueError("a Recommender answers while its caller waits: its teacher must be mode: sync, not batch (the Batch API answers within 24 hours)")
        bundle = read_bundle(path, verify=verify)
        client = None if settings is None else teacher_client(settings, os.environ.get(teacher_api_key_env))
        return cls(bundle, load_engine(bundle.base, {**LOCAL_INFERENCE, **(inference or {})}), client)

    def predict(self, user_id: str, item_id: str) -> dict[str, Any]:
        """One pair: ``reason``, ``rating``, ``distribution`` (P(1)..P(5)), ``status``, history sizes."""
        return self.predict_many([(user_id, item_id)]).iloc[0].to_dict()

    def predict_many(self, pairs: pd.DataFrame | Iterable[Sequence[str] | Mapping[str, str]]) -> pd.DataFrame:
        """Many pairs in batches, one row each, in order (the ``predict`` pipeline's table, ``prediction`` named ``rating``)."""
        requests = pairs if isinstance(pairs, pd.DataFrame) else pd.DataFrame(_pair_rows(pairs), columns=["user_id", "item_id"])
        return self._predict(requests, self.bundle.tables).rename(columns={"prediction": "rating"})

    def recommend(self, user_id: str, candidates: Sequence[str] | None = None, k: int | None = 10) -> pd.DataFrame:
        """``user_id``'s top ``k`` of ``candidates`` (default: every known item they have not rated) by predicted rating."""
        request = pd.DataFrame([{"user_id": user_id, "candidates": list(candidates) if candidates else None, "k": k}])
        pairs = recommendation_candidates(request, self.bundle.tables["interactions"])
        ranked = rank_recommendations(pairs, self._predict(pairs, self.bundle.tables))
        return ranked.rename(columns={"prediction": "rating"})

    def predict_from_histories(self, user_reviews: Sequence[Mapping[str, Any]], item_reviews: Sequence[Mapping[str, Any]], title: str) -> dict[str, Any]:
        """A pair the bundle has never seen, from reviews given in the call: each a mapping
        with ``title``, ``rating`` and ``review`` (and ``timestamp``; else in the order
        given, oldest first). The teacher, if this Recommender has one, or else the
        bundle's summarizer summarizes them; the histories are these reviews alone."""
        given = pd.concat([_reviews(user_reviews, user_id=GIVEN_USER), _reviews(item_reviews, item_id=GIVEN_ITEM)], ignore_index=True)
        summaries = self._summaries(given)
        given = given.sort_values("timestamp", kind="stable").reset_index(drop=True)
        interactions = given[["user_id", "item_id", "rating", "timestamp", "title"]]
        tables = {"history_pool": given[TARGET_COLUMNS], "summaries": summaries, "interactions": interactions}
        requests = pd.DataFrame([{"user_id": GIVEN_USER, "item_id": GIVEN_ITEM, "title": title}])
        return self._predict(requests, tables).rename(columns={"prediction": "rating"}).iloc[0].to_dict()

    def _summaries(self, reviews: pd.DataFrame) -> pd.DataFrame:
        settings = self.bundle.settings
        if self.teacher is not None:
            if "summary_teacher" not in settings:
                raise ValueError("this bundle does not record how its run asked the teacher for summaries: export it again (kedro run --pipelines export_bundle)")
            asked = SummaryTeacher(**settings["summary_teacher"])
            summaries, _ = teacher_summary_table(reviews, self.teacher, self.prompting.domain, asked, stage="predict_from_histories")
            return summaries
        if settings.get("summary_source") == "teacher":
            logger.warning("the bundle's histories were summarized by the teacher; these reviews by its summarizer (give from_bundle a teacher to match)")
        return summarizer_table(reviews, self.engine, self.bundle.adapters["summarizer"], self.prompting.domain, SummaryGeneration(**settings["summary_generation"]))

    def _predict(self, requests: pd.DataFrame, tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
        contexts = prediction_contexts(requests, tables["interactions"], tables["history_pool"], tables["summaries"], self.prompting)
        return predict_requests(contexts, self.engine, self.bundle.adapters["reasoner"], self.bundle.adapters["predictor"], self.prompting, self.generation)


def _pair_rows(pairs: Iterable[Sequence[str] | Mapping[str, str]]) -> list[dict[str, Any]]:
    return [dict(pair) if isinstance(pair, Mapping) else {"user_id": pair[0], "item_id": pair[1]} for pair in pairs]


def _reviews(reviews: Sequence[Mapping[str, Any]], user_id: str | None = None, item_id: str | None = None) -> pd.DataFrame:
    """Given reviews as interactions of the given user (each with its own item) or of the given item (each by its own user)."""
    rows = []
    for position, review in enumerate(reviews):
        missing = [key for key in ("title", "rating", "review") if key not in review]
        if missing:
            raise ValueError(f"review {position} lacks {', '.join(missing)}: each review needs title, rating and review")
        rows.append(
            {
                "user_id": user_id or f"<reviewer {position}>",
                "item_id": item_id or f"<reviewed item {position}>",
                "rating": float(review["rating"]),
                "review": str(review["review"]),
                "title": str(review["title"]),
                "timestamp": int(review.get("timestamp", position)),
            }
        )
    return pd.DataFrame(rows, columns=TARGET_COLUMNS)
