"""Generative pipelines: two generative models of handwritten digits, a scorer, a bounded loop."""
