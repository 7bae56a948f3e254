"""The gateway's HTTP routes, one module per resource (``app.create_app`` assembles them)."""
