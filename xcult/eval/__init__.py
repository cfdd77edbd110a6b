"""Bilingual cloze evaluation: scoring backends, transfer statistics, instance criteria."""
