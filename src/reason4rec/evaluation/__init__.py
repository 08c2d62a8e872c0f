"""Evaluation: accuracy metrics, baselines, reason quality and the report."""
