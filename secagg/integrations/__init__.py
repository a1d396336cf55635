"""Adapters for training frameworks (PyTorch, Flower)."""
