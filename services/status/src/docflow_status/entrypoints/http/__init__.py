"""The status service's HTTP API (DESIGN.md, "Status service").

``app.py`` builds the app from the wiring; ``deps.py`` hands each route the
ports it uses; one router per resource: ``documents.py`` (a document, its
timeline), ``listing.py`` (the tenant's list and counts), ``streams.py`` (the
Server-Sent Events), ``reindexes.py``; ``schemas.py`` holds the response bodies.
"""
