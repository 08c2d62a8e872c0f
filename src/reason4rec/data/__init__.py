"""Review data: readers, the synthetic review world, filtering, splits and history windows."""
