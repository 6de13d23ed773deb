"""Summaries a person can open: TensorBoard event files (scalars, images) without TensorFlow."""
from summaries.event_writer import SummaryWriter, png_bytes

__all__ = ["SummaryWriter", "png_bytes"]
