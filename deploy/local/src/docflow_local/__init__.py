"""docflow on its embedded defaults: a local Kafka broker and the four services.

``kafka.py`` runs Apache Kafka from its Maven jars; ``stack.py`` runs the
services as processes; ``__main__.py`` is ``make run``. The tests use the
same two modules, so what they exercise is what ``make run`` starts.
"""
