"""The offline rules teacher (``rules``). The client any teacher is asked through is ``reason4rec.completions``."""
