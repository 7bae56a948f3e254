"""The read model's rules: how events fold into a document's status."""
