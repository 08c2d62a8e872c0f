"""Cleaning, time window, k-core and chronological split of interaction tables, in DuckDB.

Each step returns ``(kept, rejects)``: nothing is dropped without a row in
``rejects`` saying which input row it was and why. The tables are DuckDB
relations in one connection (the catalog's ``ingest_engine``), held under its
memory limit and spilled to its temporary directory beyond it, so no table is
held in memory whole (figures: docs/lineage.md, "Ingest at scale"). A step
materializes what later steps read more than once as a named table of that
connection; the rest stays a lazy query, run when the catalog writes it
(streamed out of DuckDB into parquet, out of core too).

Two rules keep the peak memory near DuckDB's limit (docs/lineage.md): a pass over
the file (``stream_into``) stores what it reads as it comes, with no large
blocking operator, under the engine's lower reading limit (the parser's
blocks are in memory beside DuckDB's); and every sort, window or large join is
a statement of its own, with at most one of them, under the whole limit.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

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
# DuckDB variables with the memory limits as configured (``DuckDBEngineDataset``): while a pass over the
# file streams in (``stream_into``), and for every other statement. DuckDB shows a limit rounded
# (``286.1 MiB``), so the limit is set back from its variable, not from what DuckDB shows.
READING_MEMORY_LIMIT, MEMORY_LIMIT = "reading_memory_limit", "memory_limit"
# Rows a batch of the k-core streamed to the text pass: a few of them wait for their text at a time.
ROWS_BATCH = 65_536


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

    Under the connection's reading memory limit (``DuckDBEngineDataset``'s
    ``reading_memory_limit``, when set): the stream is a pass over the review
    file, whose parsed blocks are in memory beside DuckDB's. So ``query`` should
    hold no large blocking operator: sort or aggregate the table in a statement
    of its own, under the whole limit. The stream's own error (a truncated
    file, a missing one) is raised as it is, rather than as the DuckDB error
    that carries it.
    """
    raised: list[BaseException] = []

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            yield from stream
        except Exception as error:
            raised.append(error)
            raise

    con.register(f"{table}_stream", pa.RecordBatchReader.from_batches(stream.schema, batches()))
    ((reading_limit,),) = con.execute(f"SELECT getvariable({quote(READING_MEMORY_LIMIT)})").fetchall()
    try:
        with duckdb_setting(con, "memory_limit", reading_limit):
            con.execute(f"CREATE OR REPLACE TABLE {table} AS " + query.replace("{stream}", f"{table}_stream"))
    except duckdb.Error:
        if raised:
            raise raised[0] from None
        raise
    finally:
        con.unregister(f"{table}_stream")
    return con.table(table)


@contextmanager
def duckdb_setting(con: duckdb.DuckDBPyConnection, name: str, value: str | None) -> Iterator[None]:
    """DuckDB's setting ``name`` at ``value`` for the statements inside (None: left as it is); back after
    to the DuckDB variable of the same name if the connection has one (its configured value), else to what it was."""
    if value is None:
        yield
        return
    ((before,),) = con.execute(f"SELECT coalesce(getvariable({quote(name)}), CAST(current_setting({quote(name)}) AS VARCHAR))").fetchall()
    con.execute(f"SET {name} = {quote(value)}")
    try:
        yield
    finally:
        con.execute(f"SET {name} = {quote(before)}")


def clean_reviews(con: duckdb.DuckDBPyConnection, scanned: pa.RecordBatchReader) -> tuple[duckdb.DuckDBPyRelation, duckdb.DuckDBPyRelation]:
    """Keep well-formed reviews; reject the rest with a reason.

    Works on the scan of a dump (ids, rating, timestamp, ``review_blank``; no
    text), so it costs the same whatever the reviews' length. Reasons, in the
    order they are checked: the reader's own (``invalid_utf8``,
    ``malformed_line``), ``missing_user_id``, ``missing_item_id``,
    ``invalid_rating`` (not a number in [1, 5]), ``invalid_timestamp``,
    ``empty_review``, then ``duplicate_review`` for every later review of a
    (user, item) pair already reviewed (by time, then line).

    The checks are stored as the scan streams in (``review_checks``), and the
    duplicates found in a statement of their own (``duplicate_reviews``): the
    window over every pair then runs without the parser's blocks beside it in
    memory, and the one over 20M lines is what filled DuckDB's limit in this pass.
    """
    extra = "".join(f"{c}, " for c in scanned.schema.names if c.startswith("true_"))
    checks = f"""
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
    """
    checked = stream_into(con, "review_checks", scanned, checks)
    con.execute(
        """CREATE OR REPLACE TABLE duplicate_reviews AS SELECT line_number FROM review_checks WHERE reason IS NULL
           QUALIFY row_number() OVER (PARTITION BY user_id, item_id ORDER BY timestamp, line_number) > 1"""
    )
    duplicates = con.table("duplicate_reviews")
    well_formed = checked.filter("reason IS NULL")
    kept = well_formed.join(duplicates, "line_number", how="anti").project(f"user_id, item_id, rating, timestamp, {extra}source_file, line_number")
    rejects = make_rejects(checked.filter("reason IS NOT NULL"), "clean", "reason", "detail").union(
        make_rejects(
            well_formed.join(duplicates, "line_number", how="semi"),
            "clean",
            quote("duplicate_review"),
            quote("a (user, item) pair reviewed again; the earliest review is kept"),
        )
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
    ``k`` interactions (the k-core is unique, and this peeling reaches it). The
    input is copied into a table (``interactions_5core_ids``) sorted by line, and a
    round deletes from it every row of a user or item then below ``k``; what is
    left is the k-core, still in line order, which the text pass reads in step
    with the file (``attach_texts``). The rows dropped are stored too
    (``k_core_dropped``), by a join of their own, so that the rejects' sort by
    line (``store_rejects``) reads a table: as a lazy query, that join (its
    build side the whole k-core's lines) ran inside the sort, two blocking
    operators in one statement.
    """
    con.register("k_core_input", interactions)
    con.execute("CREATE OR REPLACE TABLE interactions_5core_ids AS SELECT * FROM k_core_input ORDER BY line_number")
    kept = con.table("interactions_5core_ids")
    (total,), rounds = kept.aggregate("count(*)").fetchall()[0], 0
    while True:
        rounds += 1
        ((removed,),) = con.execute(
            f"""DELETE FROM interactions_5core_ids
                WHERE user_id IN (SELECT user_id FROM interactions_5core_ids GROUP BY user_id HAVING count(*) < {int(k)})
                   OR item_id IN (SELECT item_id FROM interactions_5core_ids GROUP BY item_id HAVING count(*) < {int(k)})"""
        ).fetchall()
        if not removed:
            break
    logger.info("%d-core: kept %d of %d interactions after %d rounds", k, kept.aggregate("count(*)").fetchall()[0][0], total, rounds)
    con.execute("CREATE OR REPLACE TABLE k_core_dropped AS SELECT * FROM k_core_input ANTI JOIN interactions_5core_ids USING (line_number)")
    return kept, make_rejects(con.table("k_core_dropped"), "k_core", quote("below_k_core"), quote(f"user or item with fewer than {k} interactions"))


def rows_by_line(con: duckdb.DuckDBPyConnection, interactions: duckdb.DuckDBPyRelation) -> pa.RecordBatchReader:
    """The k-core's rows (``filter_k_core``'s table, in line order) streamed out of DuckDB.

    ``interactions`` must be a query over ``con``'s tables. A scan of one table, which DuckDB keeps in insertion order, on a cursor of
    its own: the batches are consumed inside another query on ``con`` (the one
    that stores the rows with their text).
    """
    return con.cursor().sql(interactions.sql_query()).to_arrow_reader(ROWS_BATCH)


def attach_texts(rows: pa.RecordBatchReader, read_texts: Callable[[Iterator[np.ndarray]], pa.RecordBatchReader]) -> pa.RecordBatchReader:
    """``rows`` (in ascending line order) with each line's review text as a last column, ``review``.

    ``read_texts`` is a dump's second pass (``ReviewDump.texts``): it takes the
    rows' line numbers in ascending chunks and gives back, in the same order, the
    text of each line it finds. The two streams are zipped by position and
    checked line by line, so nothing is joined, sorted or held whole: a batch of
    rows waits in a queue from when its line numbers go to the reader until
    its texts come back. A line whose text does not come back means the file
    changed since it was scanned: an error naming the line.
    """
    schema = rows.schema.append(pa.field("review", pa.string()))
    queued: deque[pa.RecordBatch] = deque()

    def line_numbers() -> Iterator[np.ndarray]:
        last = -1
        for batch in rows:
            numbers = batch.column("line_number").to_numpy()
            if len(numbers) and (numbers[0] <= last or (np.diff(numbers) <= 0).any()):
                raise ValueError("the kept rows must come in ascending line order to be read with their text")
            last = numbers[-1] if len(numbers) else last
            queued.append(batch)
            yield numbers

    def next_rows(n: int) -> pa.Table:
        parts = []
        while n and queued:
            head = queued.popleft()
            if len(head) > n:
                head, rest = head.slice(0, n), head.slice(n)
                queued.appendleft(rest)
            parts.append(head)
            n -= len(head)
        return pa.Table.from_batches(parts, schema=rows.schema).combine_chunks()

    def not_found(line: int) -> ValueError:
        return ValueError(f"the kept review on line {line} was not found on the second read of the review file: did it change during the run?")

    def batches() -> Iterator[pa.RecordBatch]:
        numbers = line_numbers()
        for found in read_texts(numbers):
            taken = next_rows(found.num_rows)
            expected, got = taken.column("line_number").to_numpy(), found.column("line_number").to_numpy()
            if len(expected) < len(got) or (expected != got[: len(expected)]).any():
                mismatch = np.flatnonzero(expected != got[: len(expected)])
                raise not_found(int(expected[mismatch[0]])) if len(mismatch) else ValueError(f"line {int(got[len(expected)])} was read but not asked for")
            yield from taken.append_column("review", found.column("review")).to_batches()
        for _ in numbers:  # rows the reader never asked for: their lines were not found either
            pass
        if queued:
            raise not_found(int(queued[0].column("line_number")[0].as_py()))

    return pa.RecordBatchReader.from_batches(schema, batches())


def read_review_text(con: duckdb.DuckDBPyConnection, rows_with_text: pa.RecordBatchReader, titles: pa.RecordBatchReader) -> duckdb.DuckDBPyRelation:
    """The kept interactions with their review text and title, in time order, as a
    table (``interactions_5core``), in the published column order (``source_file``
    and ``line_number`` last).

    ``rows_with_text`` is the k-core's rows with their text (``attach_texts``),
    ``titles`` the items' titles (a later line for an item wins). A missing title
    gets the placeholder ``Item <id>``.

    The stream is stored as it comes, in line order, while the file is read,
    with no large blocking operator (the titles are the join's build side:
    DuckDB takes an Arrow stream for one row and would otherwise hash the whole
    stream, text and all); the sort by time is a statement of its own, after the
    file is read, under DuckDB's whole memory limit (docs/lineage.md, "Ingest
    at scale").
    """
    stream_into(con, "item_titles", titles, "SELECT item_id, arg_max(title, line_number) AS title FROM {stream} GROUP BY item_id")
    extra = "".join(f"s.{c}, " for c in rows_with_text.schema.names if c.startswith("true_"))
    with duckdb_setting(con, "disabled_optimizers", "build_side_probe_side"):  # the engine disables none of its own
        stream_into(
            con,
            "interactions_5core_by_line",
            rows_with_text,
            "SELECT s.user_id, s.item_id, s.rating, s.review, coalesce(i.title, 'Item ' || s.item_id) AS title, s.timestamp,"
            f" {extra}s.source_file, s.line_number, i.title IS NULL AS placeholder FROM {{stream}} s LEFT JOIN item_titles i USING (item_id)",
        )
    ((kept, placeholders),) = con.execute("SELECT count(*), count(*) FILTER (WHERE placeholder) FROM interactions_5core_by_line").fetchall()
    if placeholders:
        logger.warning("%d of %d kept reviews have no item title: using the placeholder 'Item <id>'", placeholders, kept)
    con.execute(f"CREATE OR REPLACE TABLE interactions_5core AS SELECT * EXCLUDE (placeholder) FROM interactions_5core_by_line ORDER BY {TIME_ORDER}")
    con.execute("DROP TABLE interactions_5core_by_line")
    return con.table("interactions_5core")


def published(interactions: duckdb.DuckDBPyRelation, provenance: bool = True) -> duckdb.DuckDBPyRelation:
    """The interactions (with their text) in the published column order:
    ``source_file`` and ``line_number`` last, with ``provenance``."""
    extra = "".join(f", {c}" for c in extra_columns(interactions))
    trailing = ", source_file, line_number" if provenance else ""
    return interactions.project(f"user_id, item_id, rating, review, title, timestamp{extra}{trailing}")


def split_chronologically(
    con: duckdb.DuckDBPyConnection, interactions: duckdb.DuckDBPyRelation, valid_fraction: float, test_fraction: float
) -> tuple[duckdb.DuckDBPyRelation, duckdb.DuckDBPyRelation, duckdb.DuckDBPyRelation, duckdb.DuckDBPyRelation]:
    """Split by time so that every valid row is later than every train row and every
    test row later than every train and valid row; then drop valid and test rows whose
    user or item is absent from train (no cold start).

    Rows sharing the timestamp at a cut go to the earlier split, so the
    fractions are met as closely as strict time order allows. Train is a filter
    of ``interactions`` and keeps its order (DuckDB preserves a table's insertion
    order where a query has no ORDER BY); valid and test, past a join, are
    sorted by time again, each into a table of its own (``interactions_valid``,
    ``interactions_test``) in a statement of its own: so the catalog writes
    every split by a scan, with no sort beside the batches it streams out (at
    20M lines valid's sort reached DuckDB's limit while the file was written).
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
        con.execute(f"CREATE OR REPLACE TABLE interactions_{name} AS {warm.order(TIME_ORDER).sql_query()}")
        parts.append(con.table(f"interactions_{name}"))
        cold = part.join(parts[-1].project("line_number").set_alias(f"warm_{name}"), "line_number", how="anti")
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


def store_rejects(con: duckdb.DuckDBPyConnection, table: str, rejects: duckdb.DuckDBPyRelation) -> duckdb.DuckDBPyRelation:
    """A step's rejects as a table of their own (``table``), by stage (in the ingest's order), then line.

    Each stage's rows are sorted by line in a statement of their own and
    appended; DuckDB keeps a table's insertion order, so ``combine_rejects``
    then appends the steps' tables one after the other with no sort. Sorted
    here, at the step that drops the rows, rather than all at once at the end:
    at 20M lines (8.8M rejects) that one sort was the ingest's highest peak,
    with DuckDB at its limit beside what the process still held from writing
    the splits (docs/lineage.md, "Ingest at scale").
    """
    con.execute(f"CREATE OR REPLACE TABLE {table} AS " + rejects.limit(0).sql_query())
    for stage in STAGES:
        rejects.filter(f"stage = {quote(stage)}").order("line_number").insert_into(table)
    return con.table(table)


def combine_rejects(con: duckdb.DuckDBPyConnection, *rejects: duckdb.DuckDBPyRelation) -> duckdb.DuckDBPyRelation:
    """The steps' rejects (``store_rejects``' tables) in one table (``ingest_rejects``), by stage, then line.

    The tables are appended one after the other, each read in its insertion
    order, so nothing is sorted; they must come in the ingest's order of stages
    (a ValueError names the stages otherwise).
    """
    stages = [stage for relation in rejects for (stage,) in relation.project("stage").distinct().fetchall()]
    positions = [STAGES.index(stage) for stage in stages]
    if any(later < earlier for earlier, later in zip(positions, positions[1:])):
        raise ValueError(f"the rejects must come stage by stage in the ingest's order {STAGES}, got the stages {stages}")
    con.execute("CREATE OR REPLACE TABLE ingest_rejects AS " + rejects[0].limit(0).sql_query())
    for relation in rejects:
        relation.insert_into("ingest_rejects")
    return con.table("ingest_rejects")
