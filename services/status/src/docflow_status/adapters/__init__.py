"""The status service's real adapters: the SQL read model."""
