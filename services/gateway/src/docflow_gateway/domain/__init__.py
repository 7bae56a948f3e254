"""Upload rules that need no I/O: what a file is, and what it may be called."""
