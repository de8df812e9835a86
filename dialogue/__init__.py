"""The dialogue manager."""
