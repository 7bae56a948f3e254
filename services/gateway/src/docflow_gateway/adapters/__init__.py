"""The gateway's own SQL records (idempotency keys, content index)."""
