"""Screening: how exposed an address is to the taint of every traced case."""

from heisttrace.screen.exposure import Exposure, ExposureIndex, screen, screen_many

__all__ = ["Exposure", "ExposureIndex", "screen", "screen_many"]
