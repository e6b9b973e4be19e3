"""Reduction policies: what to keep or merge (the adapters decide where to hook)."""
