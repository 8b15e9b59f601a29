"""Reusable widgets.

    cards.py   stat cards, the state pill and in-app notices
    charts.py  line and stacked bar charts (None leaves a gap)
    labels.py  ElidedLabel: a label that elides instead of widening the page
"""
