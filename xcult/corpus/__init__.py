"""Corpus building: thin wrappers over the Rust engine (`xcult._core`)."""
