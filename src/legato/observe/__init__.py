"""Subscribers to the engine's events: progress bars and event files (later metrics, traces)."""
