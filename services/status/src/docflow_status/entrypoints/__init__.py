"""How the status service is reached: its Kafka subscriber and its HTTP API."""
