"""Extraction rules without Kafka: reading pages and cutting text into chunks."""
