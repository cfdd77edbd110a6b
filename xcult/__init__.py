"""xcult: cross-lingual transfer of cultural knowledge, from corpora to reports."""

__version__ = "0.1.0"
