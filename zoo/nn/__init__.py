"""Shared layers: the attention dispatch and mask types (model code lives in plugins)."""
