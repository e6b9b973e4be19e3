"""Compatibility shims for the environments zoo runs in (applied only where needed)."""
