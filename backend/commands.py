"""Every command of ``eo-ssl``, in one table: name -> (module, one-line help), in the order ``--help`` lists them.

A command module defines ``add_arguments(parser)`` and ``run(args, events) -> summary`` (the ``done`` event's); the
CLI (:mod:`backend.cli`) imports it only once the command line is checked. Add a command by adding a line here.
"""

COMMANDS: dict[str, tuple[str, str]] = {
    "prepare": ("backend.data.prepare", "build a chip store from Sentinel-1/2 rasters (or chip folders)"),
    "import-weights": ("backend.interop.import_weights", "import a published encoder (.pth/.pt or safetensors) as a "
                       "model package"),
    "pretrain": ("backend.train.pretrain", "self-supervised pre-training of an encoder on a chip store"),
    "finetune": ("backend.train.finetune", "fine-tune (or linear-probe) a model on labelled chips or parcels"),
    "evaluate": ("backend.train.evaluate", "evaluate encoders: linear probe, kNN, fine-tune at label fractions"),
    "predict": ("backend.predict.command", "predict a land-cover raster (and confidence) over an AOI"),
    "export-onnx": ("backend.interop.export_onnx", "export a classification/segmentation package to ONNX with "
                    "Deepness metadata"),
    "embed": ("backend.predict.embed", "write per-pixel features of a pre-trained encoder as a multi-band GeoTIFF"),
    "similar": ("backend.predict.similar", "cosine similarity of every pixel of a feature raster (an embedding) to "
                "the mean embedding of example polygons or points, one band per class"),
    "label-parcels": ("backend.parcels.label", "label parcels from a predicted land-cover raster"),
    "export-dataset": ("backend.parcels.export", "export chips + masks + index of labelled parcels"),
    "demo": ("backend.demo", "run the whole job on the sample shipped in resources/sample"),
}
