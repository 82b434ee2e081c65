"""Self-supervised pre-training methods.

Image-level methods (one module each, by name in :mod:`backend.ssl.registry`): rs-byol, byol, moco-v2, simsiam,
barlow-twins, swav, sharing :mod:`.base`, :mod:`.augmentations` and :mod:`.collapse`. Dense pixel-level
pre-training over time series lives in :mod:`.dense_moco` (in the registry too, ``level`` pixel). Nothing heavy
is imported here.
"""
