"""What the assistant knows: corpus files, their parsing into clauses, retrieval units, embeddings and the index on disk."""
