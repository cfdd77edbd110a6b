"""Knowledge frequency: BM25 indexes of the corpora, probe retrieval (judge and density to come)."""
