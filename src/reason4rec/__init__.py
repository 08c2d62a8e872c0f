"""reason4rec
"""

__version__ = "0.1"
