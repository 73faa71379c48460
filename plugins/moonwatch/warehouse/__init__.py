"""Warehouse I/O: the raw schema's migrations and the loaders that write to it."""
