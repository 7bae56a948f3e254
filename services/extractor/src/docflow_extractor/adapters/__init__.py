"""The extractor's adapters: the parser sandbox."""
