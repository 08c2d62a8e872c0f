import gzip
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from reason4rec.data import filtering
from reason4rec.data.filtering import (
    STAGES,
    attach_texts,
    clean_reviews,
    combine_rejects,
    make_rejects,
    filter_k_core,
    keep_time_window,
    read_review_text,
    rows_by_line,
    split_chronologically,
    store_rejects,
)
from reason4rec.data.readers import SCAN_SCHEMA, ReviewDump, ReviewFileError
from reason4rec.datasets.duckdb_tables import DuckDBEngineDataset


@pytest.fixture
def con(tmp_path):
    return DuckDBEngineDataset(memory_limit="256MB", temp_directory=str(tmp_path / "spill")).load()


def scan_stream(rows):
    """Rows as a dump's scan gives them: no text, only whether it is blank."""
    base = {"source_file": "f", "reject_reason": None, "reject_detail": "", "review_blank": False}
    frame = pd.DataFrame([{**base, **row} for row in rows])
    frame["line_number"] = range(1, len(frame) + 1)
    return pa.Table.from_pandas(frame[SCAN_SCHEMA.names], schema=SCAN_SCHEMA, preserve_index=False).to_reader()


def stream(frame):
    return pa.Table.from_pandas(frame, preserve_index=False).to_reader()


def good(user, item, ts, rating=4.0):
    return {"user_id": user, "item_id": item, "rating": rating, "timestamp": ts}


def test_clean_rejects_each_bad_case_with_reason(con):
    rows = [
        good("u1", "i1", 10),
        {**good("u1", "i2", 11), "rating": 6.0},
        {**good("u1", "i3", 12), "rating": None},  # "five" in the file: the reader gives no number
        {**good("u1", "i4", 13), "user_id": None},
        {**good("u1", "i5", 14), "item_id": " \u3000"},  # blank as Python's str.strip() has it
        {**good("u1", "i6", 15), "review_blank": True},
        {**good("u1", "i7", 16), "reject_reason": "invalid_utf8", "reject_detail": "bad byte"},
        good("u1", "i1", 17),
        {**good("u2", "i1", 18), "timestamp": None},
        {**good("u2", "i2", -5)},
        {**good("u2", "i3", 1e30)},
    ]
    kept, rejects = (relation.df() for relation in clean_reviews(con, scan_stream(rows)))
    assert kept[["user_id", "item_id", "line_number"]].values.tolist() == [["u1", "i1", 1]]
    assert sorted(rejects["reason"]) == sorted(
        ["invalid_rating", "invalid_rating", "missing_user_id", "missing_item_id", "empty_review", "invalid_utf8", "duplicate_review"] + ["invalid_timestamp"] * 3
    )
    assert rejects.set_index("reason").loc["duplicate_review", "line_number"] == 8
    assert rejects.set_index("reason").loc["invalid_utf8", "detail"] == "bad byte"
    assert len(kept) + len(rejects) == len(rows)


def test_clean_keeps_the_earliest_review_of_a_pair_by_time_then_line(con):
    rows = [good("u2", "i1", 30), good("u1", "i1", 20), good("u2", "i1", 10), good("u1", "i2", 20), good("u1", "i1", 20)]
    kept, rejects = (relation.df() for relation in clean_reviews(con, scan_stream(rows)))
    assert sorted(kept[["user_id", "item_id", "timestamp", "line_number"]].values.tolist()) == [["u1", "i1", 20, 2], ["u1", "i2", 20, 4], ["u2", "i1", 10, 3]]
    assert sorted(rejects["line_number"]) == [1, 5] and set(rejects["reason"]) == {"duplicate_review"}


TITLES = pd.DataFrame({"item_id": ["i1", "i1", "i3"], "title": ["Old Name", "Blue Train", "Not kept"], "line_number": [1, 2, 3]})


def kept_rows(con, frame):
    """Kept rows as the k-core leaves them: a table of the engine."""
    con.register("kept_frame", frame)
    con.execute("CREATE OR REPLACE TABLE kept_rows AS SELECT * FROM kept_frame")
    return con.table("kept_rows")


def texts_from(texts):
    """A second pass over a file holding ``texts`` (line number to review): it gives, in
    line order, the text of the lines asked for that it has, as ``ReviewDump.texts`` does."""

    def read_texts(line_numbers):
        asked = [n for chunk in line_numbers for n in chunk.tolist()]
        found = [n for n in asked if n in texts]
        return pa.table({"line_number": pa.array(found, pa.int64()), "review": [texts[n] for n in found]}).to_reader(max_chunksize=2)

    return read_texts


def test_kept_rows_get_their_text_and_a_title_placeholder(con):
    kept = kept_rows(con, pd.DataFrame({**good(["u1", "u2", "u3"], ["i1", "i2", "i1"], [2, 1, 3]), "source_file": "f", "line_number": [3, 7, 9]}))
    rows_with_text = attach_texts(rows_by_line(con, kept), texts_from({3: "Nice.", 5: "Not kept.", 7: "Loud.", 9: "Again."}))
    out = read_review_text(con, rows_with_text, stream(TITLES)).df()
    assert out[["review", "title"]].values.tolist() == [["Loud.", "Item i2"], ["Nice.", "Blue Train"], ["Again.", "Blue Train"]]  # in time order; a later title line wins
    assert list(out.columns) == ["user_id", "item_id", "rating", "review", "title", "timestamp", "source_file", "line_number"]
    assert con.execute("SELECT current_setting('disabled_optimizers')").fetchall() == [("",)]  # the join's setting was put back


@pytest.mark.parametrize("missing", [3, 7, 9])
def test_a_review_missing_on_the_second_read_is_an_error_naming_its_line(con, missing):
    kept = kept_rows(con, pd.DataFrame({**good(["u1", "u2", "u3"], ["i1", "i2", "i3"], [1, 2, 3]), "source_file": "f", "line_number": [3, 7, 9]}))
    texts = {n: f"Review {n}." for n in (3, 7, 9) if n != missing}
    with pytest.raises(ValueError, match=f"the kept review on line {missing} was not found on the second read"):
        read_review_text(con, attach_texts(rows_by_line(con, kept), texts_from(texts)), stream(TITLES))


def test_rows_not_in_line_order_cannot_be_given_their_text(con):
    kept = kept_rows(con, pd.DataFrame({**good(["u1", "u2"], ["i1", "i2"], [1, 2]), "source_file": "f", "line_number": [7, 3]}))
    with pytest.raises(ValueError, match="ascending line order"):
        attach_texts(rows_by_line(con, kept), texts_from({3: "a", 7: "b"})).read_all()


def test_texts_are_zipped_with_rows_across_batch_boundaries(con, monkeypatch):
    monkeypatch.setattr(filtering, "ROWS_BATCH", 3)
    lines = list(range(1, 40, 2))
    kept = kept_rows(con, pd.DataFrame({**good([f"u{n}" for n in lines], "i1", lines), "source_file": "f", "line_number": lines}))
    out = attach_texts(rows_by_line(con, kept), texts_from({n: f"Review {n}." for n in range(1, 41)})).read_pandas()
    assert out["line_number"].tolist() == lines and out["review"].tolist() == [f"Review {n}." for n in lines]
    assert (out["user_id"] == "u" + out["line_number"].astype(str)).all()


def reference_k_core(frame, k):
    """Remove one weak entity at a time until none is left (a different peeling order)."""
    frame = frame.copy()
    while True:
        users = frame["user_id"].value_counts()
        items = frame["item_id"].value_counts()
        if len(users) and users.min() < k:
            frame = frame[frame["user_id"] != users.idxmin()]
        elif len(items) and items.min() < k:
            frame = frame[frame["item_id"] != items.idxmin()]
        else:
            return frame


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_k_core_reaches_the_unique_fixed_point(con, seed):
    rng = np.random.default_rng(seed)
    pairs = {(f"u{rng.integers(40)}", f"i{int(rng.pareto(1.0) * 5) % 40}") for _ in range(600)}
    frame = pd.DataFrame(sorted(pairs), columns=["user_id", "item_id"]).assign(timestamp=0, rating=4.0, source_file="f")
    frame["line_number"] = rng.permutation(len(frame)) + 1
    kept, rejects = (relation.df() for relation in filter_k_core(con, con.from_df(frame), 5))
    assert kept["user_id"].value_counts().min() >= 5 and kept["item_id"].value_counts().min() >= 5
    expected = reference_k_core(frame, 5)
    assert set(map(tuple, kept[["user_id", "item_id"]].values)) == set(map(tuple, expected[["user_id", "item_id"]].values))
    assert len(kept) + len(rejects) == len(frame) and (rejects["reason"] == "below_k_core").all()
    assert kept["line_number"].is_monotonic_increasing  # the text pass reads it in step with the file


def test_time_window_keeps_last_days(con):
    frame = pd.DataFrame({"user_id": ["a"] * 3, "item_id": ["x", "y", "z"], "timestamp": [0, 86400 * 5, 86400 * 10], "rating": 4.0, "source_file": "f", "line_number": [1, 2, 3]})
    kept, rejects = (relation.df() for relation in keep_time_window(con, con.from_df(frame), 6))
    assert kept["item_id"].tolist() == ["y", "z"] and rejects["item_id"].tolist() == ["x"]
    assert rejects["detail"].tolist() == ["older than the last 6 days"]


def test_split_has_no_leakage_and_no_cold_start(con):
    rng = np.random.default_rng(5)
    frame = pd.DataFrame(
        {
            "user_id": [f"u{u}" for u in rng.integers(0, 30, 800)],
            "item_id": [f"i{i}" for i in rng.integers(0, 30, 800)],
            "timestamp": rng.integers(0, 200, 800),  # many ties at every cut
            "rating": 4.0,
            "source_file": "f",
            "line_number": range(1, 801),
        }
    )
    train, valid, test, rejects = (relation.df() for relation in split_chronologically(con, con.from_df(frame), 0.1, 0.1))
    assert train["timestamp"].max() < valid["timestamp"].min()
    assert max(train["timestamp"].max(), valid["timestamp"].max()) < test["timestamp"].min()
    for part in (valid, test):
        assert part["user_id"].isin(train["user_id"]).all() and part["item_id"].isin(train["item_id"]).all()
    assert len(train) + len(valid) + len(test) + len(rejects) == len(frame)
    assert 0.75 < len(train) / len(frame) < 0.85


def test_split_rejects_bad_fractions(con):
    with pytest.raises(ValueError, match="split fractions"):
        split_chronologically(con, con.from_df(pd.DataFrame({"timestamp": [1]})), 0.6, 0.5)


def test_rejects_come_by_stage_then_line_without_a_sort_at_the_end(con):
    """Each step stores its rejects sorted by stage, then line; the combined table appends them as they are."""
    rng = np.random.default_rng(3)
    rows = pd.DataFrame({"source_file": "f", "line_number": rng.permutation(3000) + 1, "user_id": "u", "item_id": "i", "stage": rng.choice(STAGES, 3000)})
    steps = [rows[rows["stage"] == "clean"], rows[rows["stage"].isin(["time_window", "k_core"])], rows[rows["stage"] == "split"]]
    stored = []
    for n, step in enumerate(steps):
        parts = [make_rejects(con.from_df(step[step["stage"] == stage]), stage, "'r'", "''") for stage in STAGES if (step["stage"] == stage).any()]
        union = parts[0]
        for part in parts[1:]:
            union = union.union(part)
        stored.append(store_rejects(con, f"step_{n}", union))
    combined = combine_rejects(con, *stored).df()
    assert len(combined) == len(rows)
    order = combined.assign(stage=combined["stage"].map(STAGES.index))[["stage", "line_number"]]
    assert order.equals(order.sort_values(["stage", "line_number"], ignore_index=True))
    with pytest.raises(ValueError, match="stage by stage in the ingest's order"):
        combine_rejects(con, stored[2], stored[0])


def test_a_truncated_dump_is_named_through_duckdb(con, tmp_path):
    """The reader's own error comes out of the DuckDB query that streams it."""
    data = gzip.compress(("\n".join(json.dumps({"reviewerID": "A1", "asin": "B1", "overall": 5.0, "reviewText": "Good.", "unixReviewTime": 1}) for _ in range(2000)) + "\n").encode())
    path = tmp_path / "cut.json.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ReviewFileError, match=r"cut\.json\.gz is truncated or corrupt: read \d+ complete lines"):
        clean_reviews(con, ReviewDump("amazon", path).scan())
