"""Reusable widgets: stat cards and charts."""
