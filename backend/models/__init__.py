"""Encoders (timm), segmentation models, temporal networks, and the model package format."""
