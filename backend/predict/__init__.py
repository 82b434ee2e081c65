"""``eo-ssl predict``: tiled, blended inference over an AOI, written as a styled Cloud-Optimised GeoTIFF."""
