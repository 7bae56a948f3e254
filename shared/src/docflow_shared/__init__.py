"""What every docflow service shares.

- ``events``: the event models (the contract between services)
- ``topics``: every topic name
- ``messaging``: the broker factory, the publisher and the failure middleware
- ``settings``: the settings base
- ``blobstore``: the blob-store port and its local adapter
- ``probes`` / ``http``: health, readiness, metrics and problem responses
"""
