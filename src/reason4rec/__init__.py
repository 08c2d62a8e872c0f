"""reason4rec
"""

__version__ = "0.1"


def __getattr__(name: str):
    """``from reason4rec import Recommender`` without importing torch for every Kedro command."""
    if name == "Recommender":
        from reason4rec.recommender import Recommender

        return Recommender
    raise AttributeError(f"module 'reason4rec' has no attribute {name!r}")
