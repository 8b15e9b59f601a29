"""Reusable widgets: stat cards, charts, and a label that elides instead of widening the page."""
