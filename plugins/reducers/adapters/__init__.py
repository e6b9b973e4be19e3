"""Adapters: where a reducer hooks into a model family and how it reads the signals."""
