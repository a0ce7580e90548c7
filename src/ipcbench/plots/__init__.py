"""Figures: a frame in, a matplotlib ``Figure`` out (never shown or saved here). Never measures."""
