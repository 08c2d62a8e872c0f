"""Nodes of ``ingest_5core``: thin wrappers over :mod:`reason4rec.data.filtering`
(two passes over the raw reviews, ids first, the kept rows' text last, into the
``ingest_engine``'s DuckDB tables, out of core), the fixed-seed pair samples, and
the base model."""

from __future__ import annotations

import logging
from typing import Any

import duckdb
import pandas as pd

from reason4rec import contexts as ctx
from reason4rec import prompts
from reason4rec.data.filtering import (
    attach_texts,
    clean_reviews,
    combine_rejects,
    dataset_statistics,
    filter_k_core,
    keep_time_window,
    published,
    read_review_text,
    rows_by_line,
    split_chronologically,
    store_rejects,
)
from reason4rec.data.readers import ReviewDump
from reason4rec.data.synthetic import GeneratedReviews
from reason4rec.llm.artifacts import BaseModelArtifact
from reason4rec.llm.base import build_base_model
from reason4rec.parameters import Base, Ingest, Pairs, Prompting, prompting_of
from reason4rec.typed_config import typed_block

logger = logging.getLogger(__name__)

Relation = duckdb.DuckDBPyRelation


def clean(raw_reviews: ReviewDump | GeneratedReviews, ingest_engine: duckdb.DuckDBPyConnection) -> tuple[Relation, Relation]:
    """Cleaning on the first pass over the reviews: ids, ratings and times, no text."""
    kept, rejects = clean_reviews(ingest_engine, raw_reviews.scan())
    return kept, store_rejects(ingest_engine, "clean_rejects", rejects)


def window_and_k_core(interactions: Relation, params: dict[str, Any], ingest_engine: duckdb.DuckDBPyConnection) -> tuple[Relation, Relation]:
    """The optional time window first (the paper keeps the last months of Books
    and Yelp), then the k-core on what is left."""
    config = typed_block(Ingest, params, "ingest")
    windowed, window_rejects = keep_time_window(ingest_engine, interactions, config.time_window_days)
    core, core_rejects = filter_k_core(ingest_engine, windowed, config.k_core)
    return core, store_rejects(ingest_engine, "k_core_rejects", window_rejects.union(core_rejects))


def read_kept_text(interactions: Relation, raw_reviews: ReviewDump | GeneratedReviews, ingest_engine: duckdb.DuckDBPyConnection) -> Relation:
    """The second pass: review text and title for the rows the k-core kept, and
    only those; the k-core's interactions with their text, in time order."""
    rows_with_text = attach_texts(rows_by_line(ingest_engine, interactions), raw_reviews.texts)
    return read_review_text(ingest_engine, rows_with_text, raw_reviews.titles())


def with_review_text(interactions_with_text: Relation) -> Relation:
    """The k-core's interactions with their text, before the split (``interactions_5core``)."""
    return published(interactions_with_text)


def split(
    interactions_with_text: Relation, params: dict[str, Any], ingest_engine: duckdb.DuckDBPyConnection
) -> tuple[Relation, Relation, Relation, pd.DataFrame, Relation]:
    """Chronological split, each split without provenance columns; returns the
    splits, their statistics and the rejects."""
    config = typed_block(Ingest, params, "ingest")
    train, valid, test, rejects = split_chronologically(ingest_engine, interactions_with_text, config.valid_fraction, config.test_fraction)
    statistics = dataset_statistics(train, valid, test)
    train, valid, test = (published(part, provenance=False) for part in (train, valid, test))
    return train, valid, test, statistics, store_rejects(ingest_engine, "split_rejects", rejects)


def collect_rejects(ingest_engine: duckdb.DuckDBPyConnection, *rejects: Relation) -> Relation:
    """All dropped rows with their stage and reason; the counts go to the log."""
    combined = combine_rejects(ingest_engine, *rejects)
    counts = combined.aggregate("stage, reason, count(*) AS rows", "stage, reason").order("stage, reason").df()
    if len(counts):
        logger.warning("ingest rejected %d rows:\n%s", counts["rows"].sum(), counts.set_index(["stage", "reason"])["rows"].to_string())
    else:
        logger.info("ingest rejected no rows")
    return combined


def pool_histories(train: pd.DataFrame, valid: pd.DataFrame, test: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """The interactions every prompt's history is drawn from (``ingest.history_pool``)."""
    return ctx.history_pool(train, valid, test, typed_block(Ingest, params, "ingest").history_pool)


def sample_pairs(interactions_train: pd.DataFrame, history_pool: pd.DataFrame, params: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two disjoint fixed-seed samples of training pairs with user and item history:
    one trains the reward model, the other the reasoner (and judges the reward model)."""
    config = typed_block(Pairs, params, "pairs")
    samples = ctx.sample_pairs(interactions_train, history_pool, {"reward": config.reward_model_size, "reasoner": config.reasoner_size}, config.seed)
    return samples["reward"], samples["reasoner"]


def build_base(interactions_train: pd.DataFrame, base_params: dict[str, Any], prompting: Prompting) -> BaseModelArtifact:
    """The shared base model, built once into a versioned artifact every expert loads.

    For ``tiny`` its tokenizer and pre-training text are ``corpus_size`` training
    reviews and titles inside the prompts' own wording, so the base knows the
    vocabulary every expert will read and write; other bases ignore the text.
    """
    config, words = typed_block(Base, base_params, "llm.base"), prompting_of(prompting)
    domain, wording = words.domain, words.wording
    if config.base_model != "tiny":
        return build_base_model([], base_params)
    sample = interactions_train.sample(min(config.tiny.corpus_size, len(interactions_train)), random_state=config.tiny.seed)
    texts = [prompts.summarizer_prompt(domain, r.title, r.rating, r.review) for r in sample.itertuples()]
    texts += [prompts.format_summary([], [], []), prompts.reasoner_prompt(domain, "", [], [], wording=wording), prompts.predictor_prompt(domain, "", [], [], float("nan"), float("nan"), "", wording=wording)]
    texts += [prompts.rating_answer(r) for r in (1, 2, 3, 4, 5)] * 20
    return build_base_model(texts, base_params)
