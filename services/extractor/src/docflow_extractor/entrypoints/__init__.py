"""How work reaches the extractor: its Kafka subscriber."""
