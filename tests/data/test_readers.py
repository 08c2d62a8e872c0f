import gzip
import json

import numpy as np
import pandas as pd
import pytest

from reason4rec.data.readers import ReviewDump, ReviewFileError, read_titles
from reason4rec.datasets.review_source import ReviewSourceDataset


def texts_of(dump, line_numbers, chunk=2):
    """The second pass for ``line_numbers`` (ascending), fed in small chunks as DuckDB streams them."""
    numbers = np.asarray(line_numbers, dtype=np.int64)
    return dump.texts(numbers[i : i + chunk] for i in range(0, len(numbers), chunk)).read_pandas()


def write_lines(path, lines, compress=False):
    data = b"".join(line if isinstance(line, bytes) else (line + "\n").encode() for line in lines)
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


AMAZON_2014 = {"reviewerID": "A1", "asin": "B1", "overall": 5.0, "reviewText": "Great strings.", "summary": "good", "unixReviewTime": 1393545600}
AMAZON_2018_NO_TEXT = {"reviewerID": "A2", "asin": "B1", "overall": 4.0, "summary": "ok", "unixReviewTime": 1393545700}
AMAZON_2023 = {"user_id": "U9", "parent_asin": "P1", "asin": "X1", "rating": 3.0, "title": "meh", "text": "Fine.", "timestamp": 1600000000123}


def test_amazon_releases_map_to_common_schema(tmp_path):
    path = write_lines(tmp_path / "r.json.gz", [json.dumps(AMAZON_2014), json.dumps(AMAZON_2018_NO_TEXT), json.dumps(AMAZON_2023)], compress=True)
    dump = ReviewDump("amazon", path)
    frame = dump.scan().read_pandas()
    assert frame["user_id"].tolist() == ["A1", "A2", "U9"]
    assert frame["item_id"].tolist() == ["B1", "B1", "P1"]
    assert frame["rating"].tolist() == [5.0, 4.0, 3.0]
    assert frame["timestamp"].tolist() == [1393545600, 1393545700, 1600000000]  # 2023 is milliseconds
    assert frame["review_blank"].tolist() == [False, True, False]
    assert frame["reject_reason"].isna().all()
    assert frame["line_number"].tolist() == [1, 2, 3]
    texts = texts_of(dump, [1, 3])
    assert texts.values.tolist() == [[1, "Great strings."], [3, "Fine."]] and dump.titles().read_all().num_rows == 0


def test_yelp_reviews_and_business_names(tmp_path):
    reviews = write_lines(tmp_path / "review.json", [json.dumps({"user_id": "u", "business_id": "b", "stars": 4, "text": "Tasty.", "date": "2021-03-04 05:06:07"}),
                                                    json.dumps({"user_id": "v", "business_id": "b", "stars": 5, "text": "Good.", "date": "2021-03-04T05:06:08"})])
    business = write_lines(tmp_path / "business.json", [json.dumps({"business_id": "b", "name": "Cafe Blue"}), json.dumps({"business_id": "c", "name": "Not kept"})])
    dump = ReviewSourceDataset(source="yelp", reviews_path=str(reviews), metadata_path=str(business)).load()
    frame = dump.scan().read_pandas()
    assert frame.loc[0, ["user_id", "item_id", "rating"]].tolist() == ["u", "b", 4]
    assert frame["timestamp"].tolist() == [1614834367, 1614834368]  # the second in another ISO form
    assert texts_of(dump, [1])["review"].tolist() == ["Tasty."]
    assert dump.titles().read_pandas()[["item_id", "title"]].values.tolist() == [["b", "Cafe Blue"], ["c", "Not kept"]]


def titles_of(path, id_keys):
    return read_titles(path, id_keys, "title").read_pandas().values.tolist()


def test_2014_metadata_python_literals_and_2018_json(tmp_path):
    literal = write_lines(tmp_path / "meta14.json.gz", ["{'asin': 'B1', 'title': ' Guitar Strings ', 'price': 3.5}", "{'asin': 'B2', 'categories': [['x']]}"], compress=True)
    assert titles_of(literal, ("asin",)) == [["B1", "Guitar Strings", 1]]
    modern = write_lines(tmp_path / "meta23.jsonl", [json.dumps({"parent_asin": "P1", "title": "Album"}), "not a line", json.dumps({"asin": "X2", "title": "Other"})])
    assert titles_of(modern, ("parent_asin", "asin")) == [["P1", "Album", 1], ["X2", "Other", 3]]


BAD_LINES = [json.dumps(AMAZON_2014), "{not json", b"\xff\xfe broken utf8\n", "", "[1, 2]", json.dumps({**AMAZON_2014, "reviewerID": 7}), "   ", json.dumps(AMAZON_2023)]


def test_unreadable_lines_are_marked_not_dropped(tmp_path):
    frame = ReviewDump("amazon", write_lines(tmp_path / "r.json", BAD_LINES)).scan().read_pandas()
    assert frame["reject_reason"].fillna("ok").tolist() == ["ok", "malformed_line", "invalid_utf8", "malformed_line", "ok", "ok"]
    assert frame["line_number"].tolist() == [1, 2, 3, 5, 6, 8]
    assert frame.loc[4, "user_id"] == "7"  # a numeric id is kept as its text


@pytest.mark.parametrize("block_bytes", [1, 64, 300, 1 << 20])
def test_block_size_and_parser_path_do_not_change_the_scan(tmp_path, block_bytes):
    """Blocks that pyarrow parses whole and blocks that need the line-by-line parser,
    cut at any size, give the same rows, line numbers and texts."""
    good = [json.dumps({**AMAZON_2014, "reviewerID": f"A{i}", "reviewText": f"Review {i}." * (i % 5)}) for i in range(40)]
    lines = good[:20] + BAD_LINES + good[20:]
    path = write_lines(tmp_path / "r.json.gz", lines, compress=True)
    reference = ReviewDump("amazon", path, block_bytes=1 << 30).scan().read_pandas()  # one block, line by line (it holds bad lines)
    frame = ReviewDump("amazon", path, block_bytes=block_bytes).scan().read_pandas()
    pd.testing.assert_frame_equal(frame, reference)
    readable = frame["reject_reason"].isna()
    assert len(frame) == 40 + 6 and frame.loc[readable, "review_blank"].sum() == 8
    texts = texts_of(ReviewDump("amazon", path, block_bytes=block_bytes), [2, 3, 45, 99])  # 99: no such line
    assert texts["line_number"].tolist() == [2, 3, 45]
    assert texts["review"].tolist() == ["Review 1.", "Review 2.Review 2.", json.loads(lines[44])["reviewText"]]


def test_truncated_gzip_names_file_and_progress(tmp_path):
    data = gzip.compress(("\n".join(json.dumps(AMAZON_2014) for _ in range(2000)) + "\n").encode())
    path = tmp_path / "cut.json.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ReviewFileError, match=r"cut\.json\.gz is truncated or corrupt: read \d+ complete lines"):
        ReviewDump("amazon", path).scan().read_all()


def test_missing_file_names_path(tmp_path):
    with pytest.raises(ReviewFileError, match="Review file not found: .*nowhere.json"):
        ReviewDump("amazon", tmp_path / "nowhere.json").scan().read_all()


def test_source_dataset_rejects_bad_configuration():
    from kedro.io import DatasetError

    with pytest.raises(DatasetError, match="Unknown review source"):
        ReviewSourceDataset(source="netflix")
    with pytest.raises(DatasetError, match="needs reviews_path"):
        ReviewSourceDataset(source="amazon")
