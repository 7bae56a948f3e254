"""The embedder's real adapters: the local model and Qdrant."""
