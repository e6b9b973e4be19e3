"""Shared layers: the attention dispatch, mask types and quantizers (model code lives in plugins)."""
