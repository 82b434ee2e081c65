"""The data layer: scenes, AOI/POI, the analysis grid, reprojection, labels, the chip store, the date rule, and the
one reader of a store with the datasets on it."""
