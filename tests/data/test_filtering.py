import numpy as np
import pandas as pd
import pytest

from reason4rec.data.filtering import attach_review_text, clean_reviews, filter_k_core, keep_time_window, split_chronologically


def scan_frame(rows):
    """Rows as a dump's scan gives them: no text, only whether it is blank."""
    base = {"source_file": "f", "reject_reason": None, "reject_detail": "", "review_blank": False}
    frame = pd.DataFrame([{**base, **row} for row in rows])
    frame["line_number"] = range(1, len(frame) + 1)
    return frame


def good(user, item, ts, rating=4.0):
    return {"user_id": user, "item_id": item, "rating": rating, "timestamp": ts}


def test_clean_rejects_each_bad_case_with_reason():
    scanned = scan_frame(
        [
            good("u1", "i1", 10),
            {**good("u1", "i2", 11), "rating": 6.0},
            {**good("u1", "i3", 12), "rating": "five"},
            {**good("u1", "i4", 13), "user_id": None},
            {**good("u1", "i5", 14), "item_id": " "},
            {**good("u1", "i6", 15), "review_blank": True},
            {**good("u1", "i7", 16), "reject_reason": "invalid_utf8", "reject_detail": "bad byte"},
            good("u1", "i1", 17),
            {**good("u2", "i1", 18), "timestamp": None},
        ]
    )
    kept, rejects = clean_reviews(scanned)
    assert kept[["user_id", "item_id", "line_number"]].values.tolist() == [["u1", "i1", 1]]
    assert sorted(rejects["reason"]) == sorted(
        ["invalid_rating", "invalid_rating", "missing_user_id", "missing_item_id", "empty_review", "invalid_utf8", "duplicate_review", "invalid_timestamp"]
    )
    assert rejects.set_index("reason").loc["duplicate_review", "line_number"] == 8
    assert rejects.set_index("reason").loc["invalid_utf8", "detail"] == "bad byte"
    assert len(kept) + len(rejects) == len(scanned)


def test_kept_rows_get_their_text_and_a_title_placeholder():
    kept = pd.DataFrame({**good(["u1", "u2"], ["i1", "i2"], [1, 2]), "source_file": "f", "line_number": [3, 7]})
    texts = pd.DataFrame({"review": ["Nice.", "Loud."], "title": ["Blue Train", None]})
    out = attach_review_text(kept, texts)
    assert out[["review", "title"]].values.tolist() == [["Nice.", "Blue Train"], ["Loud.", "Item i2"]]
    assert list(out.columns[:6]) == ["user_id", "item_id", "rating", "review", "title", "timestamp"]


def test_a_review_missing_on_the_second_read_is_an_error():
    kept = pd.DataFrame({**good(["u1"], ["i1"], [1]), "source_file": "f", "line_number": [3]})
    with pytest.raises(ValueError, match="1 kept reviews were not found on the second read"):
        attach_review_text(kept, pd.DataFrame({"review": [None], "title": [None]}))


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
def test_k_core_reaches_the_unique_fixed_point(seed):
    rng = np.random.default_rng(seed)
    pairs = {(f"u{rng.integers(40)}", f"i{int(rng.pareto(1.0) * 5) % 40}") for _ in range(600)}
    frame = pd.DataFrame(sorted(pairs), columns=["user_id", "item_id"]).assign(timestamp=0, rating=4.0)
    kept, rejects = filter_k_core(frame, 5)
    assert kept["user_id"].value_counts().min() >= 5 and kept["item_id"].value_counts().min() >= 5
    expected = reference_k_core(frame, 5)
    assert set(map(tuple, kept[["user_id", "item_id"]].values)) == set(map(tuple, expected[["user_id", "item_id"]].values))
    assert len(kept) + len(rejects) == len(frame) and (rejects["reason"] == "below_k_core").all()


def test_time_window_keeps_last_days():
    frame = pd.DataFrame({"user_id": ["a"] * 3, "item_id": ["x", "y", "z"], "timestamp": [0, 86400 * 5, 86400 * 10], "rating": 4.0})
    kept, rejects = keep_time_window(frame, 6)
    assert kept["item_id"].tolist() == ["y", "z"] and rejects["item_id"].tolist() == ["x"]


def test_split_has_no_leakage_and_no_cold_start():
    rng = np.random.default_rng(5)
    frame = pd.DataFrame(
        {
            "user_id": [f"u{u}" for u in rng.integers(0, 30, 800)],
            "item_id": [f"i{i}" for i in rng.integers(0, 30, 800)],
            "timestamp": rng.integers(0, 200, 800),  # many ties at every cut
            "rating": 4.0,
        }
    )
    train, valid, test, rejects = split_chronologically(frame, 0.1, 0.1)
    assert train["timestamp"].max() < valid["timestamp"].min()
    assert max(train["timestamp"].max(), valid["timestamp"].max()) < test["timestamp"].min()
    for part in (valid, test):
        assert part["user_id"].isin(train["user_id"]).all() and part["item_id"].isin(train["item_id"]).all()
    assert len(train) + len(valid) + len(test) + len(rejects) == len(frame)
    assert 0.75 < len(train) / len(frame) < 0.85


def test_split_rejects_bad_fractions():
    with pytest.raises(ValueError, match="split fractions"):
        split_chronologically(pd.DataFrame({"timestamp": [1]}), 0.6, 0.5)
