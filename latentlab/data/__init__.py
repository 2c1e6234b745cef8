"""Data latentlab renders itself: SynthFaces, face-like portraits with known generative factors."""

from .synthfaces import ATTRIBUTES, BINARY, FACTORS, RANGES, Face, render, sample_factors

__all__ = ["ATTRIBUTES", "BINARY", "FACTORS", "RANGES", "Face", "render", "sample_factors"]
