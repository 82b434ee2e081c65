"""Parcels: label parcels from a land-cover raster (``label-parcels``) and build a chip dataset from labelled
parcels (``export-dataset``)."""
