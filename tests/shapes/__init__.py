"""The catalogue of graph shapes (one table in ``catalogue.py``) and the order checker."""
