"""How the outside reaches the gateway: its HTTP API."""
