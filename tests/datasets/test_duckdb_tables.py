import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from kedro.io import DatasetError, Version

from reason4rec.data.filtering import duckdb_setting, stream_into
from reason4rec.datasets.duckdb_tables import DuckDBEngineDataset, DuckDBParquetDataset


def test_engine_is_one_connection_with_its_limits(tmp_path):
    engine = DuckDBEngineDataset(memory_limit="300MB", temp_directory=str(tmp_path / "spill"), threads=1)
    con = engine.load()
    assert engine.load() is con and (tmp_path / "spill").is_dir()
    assert con.execute("SELECT current_setting('threads'), current_setting('memory_limit')").fetchall() == [(1, "286.1 MiB")]


def test_a_pass_over_the_file_streams_in_under_the_reading_limit_and_the_whole_limit_is_back_after(tmp_path):
    con = DuckDBEngineDataset(memory_limit="300MB", reading_memory_limit="100MB", temp_directory=str(tmp_path / "spill")).load()
    seen = []

    def batches():
        for n in range(3):  # the limit DuckDB has while it takes each batch
            seen.append(con.cursor().execute("SELECT current_setting('memory_limit')").fetchall()[0][0])
            yield pa.record_batch({"n": [n]})

    stream_into(con, "numbers", pa.RecordBatchReader.from_batches(pa.schema([("n", pa.int64())]), batches()))
    assert set(seen) == {"95.3 MiB"} and len(seen) == 3
    assert con.execute("SELECT current_setting('memory_limit')").fetchall() == [("286.1 MiB",)]


def test_a_setting_is_back_after_the_statements_inside_also_when_they_fail(tmp_path):
    con = DuckDBEngineDataset(memory_limit="300MB", temp_directory=str(tmp_path / "spill")).load()
    for _ in range(3):  # set back from the configured 300MB, not from DuckDB's rounded 286.1 MiB, which would drift
        with duckdb_setting(con, "memory_limit", "100MB"):
            assert con.execute("SELECT current_setting('memory_limit')").fetchall() == [("95.3 MiB",)]
    assert con.execute("SELECT current_setting('memory_limit')").fetchall() == [("286.1 MiB",)]
    with pytest.raises(duckdb.Error), duckdb_setting(con, "disabled_optimizers", "build_side_probe_side"):
        assert con.execute("SELECT current_setting('disabled_optimizers')").fetchall() == [("build_side_probe_side",)]
        con.execute("SELECT * FROM no_such_table")
    assert con.execute("SELECT current_setting('disabled_optimizers')").fetchall() == [("",)]


@pytest.mark.parametrize(
    ("limits", "message"),
    [({"memory_limit": "1GB", "reading_memory_limit": "2GB"}, "reading_memory_limit \\(2GB\\) must not exceed memory_limit \\(1GB\\)"),
     ({"memory_limit": "lots"}, "not a memory size: 'lots'"),
     ({"memory_limit": "1GB", "reading_memory_limit": "1.2.3MB"}, "not a memory size: '1.2.3MB'")],
)
def test_bad_limits_are_refused(tmp_path, limits, message):
    with pytest.raises(DatasetError, match=message):
        DuckDBEngineDataset(temp_directory=str(tmp_path / "spill"), **limits)


def test_a_relation_is_written_in_its_order_as_a_version_and_read_as_pandas(tmp_path):
    con = DuckDBEngineDataset(temp_directory=str(tmp_path / "spill")).load()
    dataset = DuckDBParquetDataset(str(tmp_path / "t.parquet"), version=Version(None, "v1"), batch_rows=30_000, save_args={"compression": "zstd"})
    assert not dataset.exists()
    dataset.save(con.sql("SELECT range AS n, 'x' || range AS name FROM range(100000)").order("n DESC"))
    loaded = DuckDBParquetDataset(str(tmp_path / "t.parquet"), version=Version(None, None)).load()
    assert dataset.exists() and (tmp_path / "t.parquet" / "v1" / "t.parquet").is_file()
    assert loaded["n"].tolist() == list(range(99999, -1, -1)) and loaded.loc[0, "name"] == "x99999"
    assert [p.name for p in (tmp_path / "t.parquet" / "v1").iterdir()] == ["t.parquet"]  # nothing partial left
    written = pq.ParquetFile(tmp_path / "t.parquet" / "v1" / "t.parquet").metadata
    assert written.num_row_groups == 4 and written.row_group(0).column(0).compression == "ZSTD"  # a row group a batch; save_args reach the writer


def test_a_bad_batch_size_is_refused(tmp_path):
    with pytest.raises(DatasetError, match="batch_rows must be a positive number of rows, got 0"):
        DuckDBParquetDataset(str(tmp_path / "t.parquet"), batch_rows=0)


def test_a_pandas_frame_is_refused(tmp_path):
    with pytest.raises(DatasetError, match="saves a DuckDB relation, got DataFrame"):
        DuckDBParquetDataset(str(tmp_path / "t.parquet")).save(pd.DataFrame({"a": [1]}))
