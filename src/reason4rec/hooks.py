"""Project hooks: print the accuracy table when a run that produced it ends."""

from __future__ import annotations

from kedro.framework.hooks import hook_impl


class PrintAccuracyTable:
    @hook_impl
    def after_pipeline_run(self, run_params, pipeline, catalog) -> None:  # noqa: ANN001 - Kedro's hook signature
        if "accuracy_table" not in pipeline.all_outputs():
            return
        table = catalog.load("accuracy_table")
        print("\nRating accuracy on the test split (lower is better):")
        print(table.to_string(index=False, float_format="%.4f"))
        print("Report: data/08_reporting/report/report.md\n")
