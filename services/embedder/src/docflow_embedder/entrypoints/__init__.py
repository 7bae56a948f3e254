"""How work reaches the embedder: its Kafka subscriber."""
