"""Custom Kedro datasets: the raw review source and adapter checkpoints."""
