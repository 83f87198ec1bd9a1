"""legato's showcase example: a voice agent chaining real offline models (see README.md)."""
