"""Cleaning, time window, k-core and chronological split of interaction tables, in DuckDB.

Each step returns ``(kept, rejects)``: nothing is dropped without a row in
``rejects`` saying which input row it was and why. The tables are DuckDB
relations in one connection (the catalog's ``ingest_engine``), held under its
memory limit and spilled to its temporary directory beyond it, so no table is
held in memory whole (figures: docs/lineage.md, "Ingest at scale"). A step
materializes what later steps read more than once as a named table of that
connection; the rest stays a lazy query, run when the catalog writes it
(streamed out of DuckDB into parquet, out of core too).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

logger = logging.getLogger(__name__)

INTERACTION_COLUMNS = ["user_id", "item_id", "rating", "review", "title", "timestamp"]
REJECT_COLUMNS = ["stage", "reason", "source_file", "line_number", "user_id", "item_id", "detail"]
STAGES = ["clean", "time_window", "k_core", "split"]
# Interactions are unique by (user, item) once cleaned, so this order is total: every table comes out the same.
TIME_ORDER = "timestamp, user_id, item_id"
# Python's str.isspace(): ASCII whitespace, \x1c-\x1f, \x85 and Unicode's separators.
BLANK_PATTERN = r"[\t-\r\x{1c}-\x{20}\x{85}\p{Z}]*"
LINE_NUMBER_BATCH = 1 << 20


def quote(text: str) -> str:
    """``text`` as an SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def extra_columns(relation: duckdb.DuckDBPyRelation) -> list[str]:
    """The ground-truth columns (``true_*``) a synthetic world carries along."""
    return [c for c in relation.columns if c.startswith("true_")]


def make_rejects(rows: duckdb.DuckDBPyRelation, stage: str, reason: str, detail: str) -> duckdb.DuckDBPyRelation:
    """Reject rows in the common schema from the rows being dropped; ``reason`` and
    ``detail`` are SQL expressions over ``rows`` (``quote`` a constant)."""
    if stage not in STAGES:
        raise ValueError(f"unknown ingest stage {stage!r}: the rejects are written stage by stage, in {STAGES}")
    return rows.project(
        f"{quote(stage)} AS stage, CAST({reason} AS VARCHAR) AS reason, CAST(source_file AS VARCHAR) AS source_file,"
        f" CAST(line_number AS BIGINT) AS line_number, CAST(user_id AS VARCHAR) AS user_id, CAST(item_id AS VARCHAR) AS item_id,"
        f" CAST({detail} AS VARCHAR) AS detail"
    )


def stream_into(con: duckdb.DuckDBPyConnection, table: str, stream: pa.RecordBatchReader, query: str = "SELECT * FROM {stream}") -> duckdb.DuckDBPyRelation:
    """Create ``table`` from ``query`` over an Arrow stream, batch by batch.

    The stream's own error (a truncated file, a missing one) is raised as it is,
    rather than as the DuckDB error that carries it.
    """
    raised: list[BaseException] = []

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            yield from stream
        except Exception as error:
            raised.append(error)
            raise

    con.register(f"{table}_stream", pa.RecordBatchReader.from_batches(stream.schema, batches()))
    try:
        con.execute(f"CREATE OR REPLACE TABLE {table} AS " + query.replace("{stream}", f"{table}_stream"))
    except duckdb.Error:
        if raised:
            raise raised[0] from None
        raise
    finally:
        con.unregister(f"{table}_stream")
    return con.table(table)


def clean_reviews(con: duckdb.DuckDBPyConnection, scanned: pa.RecordBatchReader) -> tuple[duckdb.DuckDBPyRelation, duckdb.DuckDBPyRelation]:
    """Keep well-formed reviews; reject the rest with a reason.

    Works on the scan of a dump (ids, rating, timestamp, ``review_blank``; no
    text), so it costs the same whatever the reviews' length. Reasons, in the
    order they are checked: the reader's own (``invalid_utf8``,
    ``malformed_line``), ``missing_user_id``, ``missing_item_id``,
    ``invalid_rating`` (not a number in [1, 5]), ``invalid_timestamp``,
    ``empty_review``, then ``duplicate_review`` for every later review of a
    (user, item) pair already reviewed (by time, then line).
    """
    extra = "".join(f"{c}, " for c in scanned.schema.names if c.startswith("true_"))
    checks = f"""
        SELECT *, reason IS NULL AND row_number() OVER (PARTITION BY reason IS NULL, user_id, item_id ORDER BY timestamp, line_number) > 1 AS duplicate
        FROM (
            SELECT CAST(user_id AS VARCHAR) AS user_id, CAST(item_id AS VARCHAR) AS item_id, rating, TRY_CAST(trunc(time) AS BIGINT) AS timestamp, {extra}
                   CAST(source_file AS VARCHAR) AS source_file, CAST(line_number AS BIGINT) AS line_number,
                   CASE
                       WHEN reject_reason IS NOT NULL THEN CAST(reject_reason AS VARCHAR)
                       WHEN user_id IS NULL OR regexp_full_match(CAST(user_id AS VARCHAR), '{BLANK_PATTERN}') THEN 'missing_user_id'
                       WHEN item_id IS NULL OR regexp_full_match(CAST(item_id AS VARCHAR), '{BLANK_PATTERN}') THEN 'missing_item_id'
                       WHEN coalesce(NOT rating BETWEEN 1 AND 5, true) THEN 'invalid_rating'
                       WHEN time IS NULL OR isnan(time) OR time < 0 OR TRY_CAST(trunc(time) AS BIGINT) IS NULL THEN 'invalid_timestamp'
                       WHEN coalesce(review_blank, false) THEN 'empty_review'
                   END AS reason,
                   coalesce(CAST(reject_detail AS VARCHAR), '') AS detail
            FROM (SELECT * EXCLUDE (rating, timestamp), TRY_CAST(rating AS DOUBLE) AS rating, TRY_CAST(timestamp AS DOUBLE) AS time FROM {{stream}})
        )
    """
    checked = stream_into(con, "review_checks", scanned, checks)
    kept = checked.filter("reason IS NULL AND NOT duplicate").project(f"user_id, item_id, rating, timestamp, {extra}source_file, line_number")
    rejects = make_rejects(
        checked.filter("reason IS NOT NULL OR duplicate"),
        "clean",
        "coalesce(reason, 'duplicate_review')",
        f"CASE WHEN duplicate THEN {quote('a (user, item) pair reviewed again; the earliest review is kept')} ELSE detail END",
    )
    return kept, rejects


def keep_time_window(
    con: duckdb.DuckDBPyConnection, interactions: duckdb.DuckDBPyRelation, window_days: float | None
) -> tuple[duckdb.DuckDBPyRelation, duckdb.DuckDBPyRelation]:
    """Keep the last ``window_days`` before the latest interaction (None keeps all)."""
    if not window_days:
        return interactions, make_rejects(interactions.filter("false"), "time_window", quote("outside_time_window"), "''")
    (latest,) = interactions.aggregate("max(timestamp)").fetchall()[0]
    start = (latest if latest is not None else 0) - int(window_days * 86400)
    return (
        interactions.filter(f"timestamp > {start}"),
        make_rejects(interactions.filter(f"NOT timestamp > {start}"), "time_window", quote("outside_time_window"), quote(f"older than the last {window_days} days")),
    )


def filter_k_core(con: duckdb.DuckDBPyConnection, interactions: duckdb.DuckDBPyRelation, k: int) -> tuple[duckdb.DuckDBPyRelation, duckdb.DuckDBPyRelation]:
    """Iteratively drop users and items with fewer than ``k`` interactions, to a fixed point.

    The result is the largest subset in which every user and item has at least
    ``k`` interactions (the k-core is unique, and this peeling reaches it). A round
    deletes, from a table of (line, user, item), every row of a user or item then
    below ``k``; the kept rows (a table: the text pass and the split read it) are
    the input's rows still there.
    """
    con.register("k_core_input", interactions)
    con.execute("CREATE OR REPLACE TABLE k_core_pairs AS SELECT line_number, user_id, item_id FROM k_core_input")
    (total,), rounds = con.table("k_core_pairs").aggregate("count(*)").fetchall()[0], 0
    while True:
        rounds += 1
        ((removed,),) = con.execute(
            f"""DELETE FROM k_core_pairs
                WHERE user_id IN (SELECT user_id FROM k_core_pairs GROUP BY user_id HAVING count(*) < {int(k)})
                   OR item_id IN (SELECT item_id FROM k_core_pairs GROUP BY item_id HAVING count(*) < {int(k)})"""
        ).fetchall()
        if not removed:
            break
    con.execute("CREATE OR REPLACE TABLE interactions_5core_ids AS SELECT * FROM k_core_input SEMI JOIN k_core_pairs USING (line_number)")
    kept = con.table("interactions_5core_ids")
    logger.info("%d-core: kept %d of %d interactions after %d rounds", k, kept.aggregate("count(*)").fetchall()[0][0], total, rounds)
    dropped = con.sql("SELECT * FROM k_core_input ANTI JOIN k_core_pairs USING (line_number)")
    return kept, make_rejects(dropped, "k_core", quote("below_k_core"), quote(f"user or item with fewer than {k} interactions"))


def read_review_text(
    con: duckdb.DuckDBPyConnection, interactions: duckdb.DuckDBPyRelation, texts: pa.RecordBatchReader, titles: pa.RecordBatchReader
) -> duckdb.DuckDBPyRelation:
    """The kept interactions with their review text and title, in time order, as a
    table (``interactions_5core``), in the published column order (``source_file``
    and ``line_number`` last).

    ``texts`` holds the review text (stripped) of the kept lines, ``titles`` the
    items' titles (a later line for an item wins). A missing title gets the
    placeholder ``Item <id>``; a missing review means the file changed since it was
    scanned, which is an error.

    The join and the sort by time run as two statements, one blocking operator
    each, and every later step filters this ordered table: a query that joined
    the text and sorted it at once ran out of DuckDB's 1 GB memory limit at 20M
    lines (docs/lineage.md, "Ingest at scale").
    """
    stream_into(con, "item_titles", titles, "SELECT item_id, arg_max(title, line_number) AS title FROM {stream} GROUP BY item_id")
    con.register("text_wanted", interactions)
    extra = "".join(f"w.{c}, " for c in extra_columns(interactions))
    stream_into(
        con,
        "kept_review_text",
        texts,
        "SELECT w.user_id, w.item_id, w.rating, t.review, coalesce(i.title, 'Item ' || w.item_id) AS title, w.timestamp,"
        f" {extra}w.source_file, w.line_number, i.title IS NULL AS placeholder"
        " FROM {stream} t JOIN text_wanted w USING (line_number) LEFT JOIN item_titles i USING (item_id)",
    )
    ((wanted, found, placeholders),) = con.execute(
        "SELECT (SELECT count(*) FROM text_wanted), count(*), count(*) FILTER (WHERE placeholder) FROM kept_review_text"
    ).fetchall()
    if found != wanted:
        raise ValueError(f"{wanted - found} kept reviews were not found on the second read of the review file: did it change during the run?")
    if placeholders:
        logger.warning("%d of %d kept reviews have no item title: using the placeholder 'Item <id>'", placeholders, wanted)
    con.execute(f"CREATE OR REPLACE TABLE interactions_5core AS SELECT * EXCLUDE (placeholder) FROM kept_review_text ORDER BY {TIME_ORDER}")
    con.execute("DROP TABLE kept_review_text")
    return con.table("interactions_5core")


def ascending_line_numbers(con: duckdb.DuckDBPyConnection, interactions: duckdb.DuckDBPyRelation) -> Iterator[np.ndarray]:
    """The interactions' line numbers in ascending chunks, streamed from DuckDB.

    The query runs on a cursor of its own and starts here, not at the first chunk:
    the chunks are consumed inside another query on ``con`` (the text stream's).
    """
    con.register("line_numbers_input", interactions)
    con.execute("CREATE OR REPLACE TABLE wanted_line_numbers AS SELECT line_number FROM line_numbers_input")
    reader = con.cursor().sql("SELECT line_number FROM wanted_line_numbers ORDER BY line_number").to_arrow_reader(LINE_NUMBER_BATCH)
    return (batch.column(0).to_numpy() for batch in reader)


def published(interactions: duckdb.DuckDBPyRelation, provenance: bool = True) -> duckdb.DuckDBPyRelation:
    """The interactions (with their text) in the published column order:
    ``source_file`` and ``line_number`` last, with ``provenance``."""
    extra = "".join(f", {c}" for c in extra_columns(interactions))
    trailing = ", source_file, line_number" if provenance else ""
    return interactions.project(f"user_id, item_id, rating, review, title, timestamp{extra}{trailing}")


def split_chronologically(
    interactions: duckdb.DuckDBPyRelation, valid_fraction: float, test_fraction: float
) -> tuple[duckdb.DuckDBPyRelation, duckdb.DuckDBPyRelation, duckdb.DuckDBPyRelation, duckdb.DuckDBPyRelation]:
    """Split by time so that every valid row is later than every train row and every
    test row later than every train and valid row; then drop valid and test rows whose
    user or item is absent from train (no cold start).

    Rows sharing the timestamp at a cut go to the earlier split, so the
    fractions are met as closely as strict time order allows. Train is a filter
    of ``interactions`` and keeps its order (DuckDB preserves a table's insertion
    order where a query has no ORDER BY); valid and test, past a join, are
    sorted by time again.
    """
    if not (0 <= valid_fraction < 1 and 0 < test_fraction < 1 and valid_fraction + test_fraction < 1):
        raise ValueError(f"split fractions must be in [0, 1) and sum below 1, got valid={valid_fraction}, test={test_fraction}")
    ((n,),) = interactions.aggregate("count(*)").fetchall()
    n_train = int(round(n * (1 - valid_fraction - test_fraction)))
    n_train_valid = int(round(n * (1 - test_fraction)))

    def time_at(position: int) -> int | None:
        found = interactions.project("timestamp").order("timestamp").limit(1, offset=max(position - 1, 0)).fetchall()
        return found[0][0] if found else None

    train_cut, valid_cut = time_at(n_train), time_at(n_train_valid)
    if train_cut is None:  # no interactions: every split is empty
        train_cut = valid_cut = 0
    train = interactions.filter(f"timestamp <= {train_cut}")
    users, items = train.project("user_id").distinct().set_alias("train_users"), train.project("item_id").distinct().set_alias("train_items")
    parts, rejects = [], []
    for name, part in (("valid", interactions.filter(f"timestamp > {train_cut} AND timestamp <= {valid_cut}")), ("test", interactions.filter(f"timestamp > {valid_cut}"))):
        part = part.set_alias(name)
        warm = part.join(users, "user_id", how="semi").join(items, "item_id", how="semi")
        parts.append(warm.order(TIME_ORDER))
        cold = part.join(warm.project("line_number").set_alias(f"warm_{name}"), "line_number", how="anti")
        rejects.append(make_rejects(cold, "split", quote("cold_start"), quote(f"{name} row whose user or item is not in train")))
    return train, parts[0], parts[1], rejects[0].union(rejects[1])


def dataset_statistics(train: duckdb.DuckDBPyRelation, valid: duckdb.DuckDBPyRelation, test: duckdb.DuckDBPyRelation) -> pd.DataFrame:
    """Rows, users and items per split and overall (the paper's Table 1)."""
    columns = "user_id, item_id, rating, timestamp"
    parts = {"train": train, "valid": valid, "test": test, "all": train.project(columns).union(valid.project(columns)).union(test.project(columns))}
    rows = []
    for name, part in parts.items():
        ((n, users, items, mean, first, last),) = part.aggregate(
            "count(*), count(DISTINCT user_id), count(DISTINCT item_id), avg(rating), min(timestamp), max(timestamp)"
        ).fetchall()
        rows.append(
            {
                "split": name,
                "rows": n,
                "users": users,
                "items": items,
                "mean_rating": round(float(mean), 4) if n else float("nan"),
                "first_timestamp": int(first) if n else -1,
                "last_timestamp": int(last) if n else -1,
            }
        )
    return pd.DataFrame(rows)


def combine_rejects(con: duckdb.DuckDBPyConnection, *rejects: duckdb.DuckDBPyRelation) -> duckdb.DuckDBPyRelation:
    """Every stage's rejects in one table (``ingest_rejects``), by stage (in the ingest's order), then line.

    Written stage by stage, each sorted by line on its own and appended, and read
    back in insertion order: DuckDB's sort of all the stages' rejects at once ran
    out of its memory limit at 20M lines (8.8M rejects), where each stage's own
    sort, and the whole of this, stays under it.
    """
    combined = rejects[0]
    for more in rejects[1:]:
        combined = combined.union(more)
    con.execute("CREATE OR REPLACE TABLE ingest_rejects AS " + combined.limit(0).sql_query())
    for stage in STAGES:
        combined.filter(f"stage = {quote(stage)}").order("line_number").insert_into("ingest_rejects")
    return con.table("ingest_rejects")
