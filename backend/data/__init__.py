"""The data layer: scenes, AOI/POI, the analysis grid, reprojection, labels, the chip store and datasets."""
