"""What the plugin says when a backend command fails, in its own words.

The backend's hints are written for its command line ("Run the same command with --resume"); in QGIS the same fix
is a checkbox, a layer picker or a menu. :data:`GUI_HINTS` is the one table of the plugin's words for the error
codes it knows (``backend.errors.EoSslError`` codes); a code it does not know keeps the backend's hint. The
backend's message (what is wrong, with the paths and numbers) is kept, with its option names (``--resume``) replaced
by the names of the parameters in QGIS (:data:`OPTION_NAMES`).
"""

from __future__ import annotations

import re
from typing import Any

from .i18n import tr
from .names import NO_BACKEND_HINT, OPTIONS_PATH, QT_TRANSLATE_NOOP, SETUP_MENU_PATH

_OUTPUT = QT_TRANSLATE_NOOP(
    "@default", "Choose an output in a folder you can write to (and not one of the inputs).")
_RESUME_AFRESH = QT_TRANSLATE_NOOP(
    "@default", "The checkpoint cannot be used: untick 'Resume' (and tick 'Replace') to start afresh.")
_STORE = QT_TRANSLATE_NOOP(
    "@default", "Choose a folder written by '1 Prepare data' (it holds manifest.json) as the chip store.")
_MODEL = QT_TRANSLATE_NOOP(
    "@default", "Choose a model package folder written by '2 Pre-train' or '3 Fine-tune' (it holds model.json and "
                "weights.safetensors).")
_LABELS = QT_TRANSLATE_NOOP(
    "@default", "This step needs labelled parcels: give the parcels and their class field to '1 Prepare data' (in "
                "the eo-ssl dialog: the Data tab, 'Labelled parcels'), with at least two classes inside the area of "
                "interest.")
_AREA = QT_TRANSLATE_NOOP(
    "@default", "Choose an area of interest the Sentinel-2 scenes cover (a polygon layer, only its selected "
                "features, or an extent), or check the scenes of that place.")
_PERIOD = QT_TRANSLATE_NOOP(
    "@default", "Choose a period of interest (or a date) that has scenes: the scenes' dates are in their layer "
                "names.")
_SIZE = QT_TRANSLATE_NOOP(
    "@default", "Use a smaller crop or tile size, or a larger area of interest.")
_INIT = QT_TRANSLATE_NOOP(
    "@default", "Start from a model package with the same encoder and bands, or leave the model package to start "
                "from empty (a random start).")

#: backend error code -> what to do, in the plugin's words (English; translated when shown).
GUI_HINTS: dict[str, str] = {
    "output_exists": QT_TRANSLATE_NOOP(
        "@default", "Tick 'Replace' (the algorithm's overwrite option) or choose another output."),
    "output_not_writable": _OUTPUT,
    "not_eo_ssl_output": QT_TRANSLATE_NOOP(
        "@default", "That output holds files eo-ssl did not write, which it never replaces (not even with "
                    "'Replace'): choose an empty or new output folder or file."),
    "output_busy": QT_TRANSLATE_NOOP(
        "@default", "Another run is writing the same output: wait for it to end (QGIS's task manager, bottom right, "
                    "shows it), or choose another output."),
    "disk_full": QT_TRANSLATE_NOOP(
        "@default", "Free some disk space, or choose an output on a disk with room (the dialog's chip stores go to "
                    "the cache folder of {options})."),
    "bad_output": _OUTPUT,
    "output_is_input": _OUTPUT,
    "no_checkpoint": QT_TRANSLATE_NOOP(
        "@default", "Untick 'Resume' to start afresh, or choose the output folder of the interrupted run."),
    "resume_mismatch": QT_TRANSLATE_NOOP(
        "@default", "'Resume' continues an interrupted run only with its own settings: set them back as they were, "
                    "or untick 'Resume' to start afresh, or choose a new output folder."),
    "corrupt_checkpoint": _RESUME_AFRESH,
    "unsafe_checkpoint": _RESUME_AFRESH,
    "s1_missing": QT_TRANSLATE_NOOP(
        "@default", "The chip store has no Sentinel-1 data: choose the RS-BYOL variant 'auto' or 's2-only' (or "
                    "another method with Sentinel-2 input bands), or prepare the data again with Sentinel-1 layers."),
    "sensor_missing": QT_TRANSLATE_NOOP(
        "@default", "The chip store lacks a sensor this step needs: prepare it again with those layers, or ask only "
                    "for the sensors it has (e.g. input bands 's2')."),
    "no_s2": QT_TRANSLATE_NOOP("@default", "Give at least one Sentinel-2 layer (or a Sentinel-2 folder)."),
    "not_a_chipstore": _STORE,
    "corrupt_chipstore": _STORE,
    "corrupt_store": QT_TRANSLATE_NOOP(
        "@default", "The chip store is damaged (cut short): prepare it again. A store of the dialog is in the cache "
                    "folder: {options} > 'Empty the cache…', then Run."),
    "chipstore_too_new": QT_TRANSLATE_NOOP(
        "@default", "The chip store was written by a newer eo-ssl: update the plugin, or prepare the data again."),
    "wrong_store_kind": QT_TRANSLATE_NOOP(
        "@default", "Choose the task that fits the chip store (segmentation: scenes prepared with parcels; "
                    "classification: chip folders), or prepare the data for that task."),
    "not_a_model": _MODEL,
    "corrupt_model": _MODEL,
    "corrupt_weights": _MODEL,
    "unsafe_weights": _MODEL,
    "unsupported_model": _MODEL,
    "model_too_new": QT_TRANSLATE_NOOP(
        "@default", "The model package was written by a newer eo-ssl: update the plugin."),
    "not_a_classifier": QT_TRANSLATE_NOOP(
        "@default", "Predicting needs a fine-tuned model package (from '3 Fine-tune'), not a pre-trained encoder."),
    "missing_bands": QT_TRANSLATE_NOOP(
        "@default", "The model reads bands the inputs do not have (listed above): give the Sentinel-2 (and "
                    "Sentinel-1) layers of the kind it was trained on."),
    "no_gpu": QT_TRANSLATE_NOOP(
        "@default", "Set Devices to 'auto' or 'cpu' (the default device is in {options}), or create the backend "
                    "environment with the CUDA build of PyTorch: {setup}."),
    "not_enough_gpus": QT_TRANSLATE_NOOP(
        "@default", "Ask for fewer GPUs in Devices (Raster > eo-ssl > Backend diagnostics shows how many there are)."),
    "no_labels": _LABELS,
    "no_samples": _LABELS,
    "one_class": _LABELS,
    "class_field_missing": _LABELS,
    "no_parcels": _LABELS,
    "parcels_missing": _LABELS,
    "parcels_empty": _LABELS,
    "no_validation": QT_TRANSLATE_NOOP(
        "@default", "Evaluating needs validation parcels: prepare the data with a validation fraction above 0 (an "
                    "advanced parameter of '1 Prepare data')."),
    "aoi_empty": _AREA,
    "aoi_outside_rasters": _AREA,
    "all_nodata": QT_TRANSLATE_NOOP(
        "@default", "The scenes have no valid pixel in that area and period: choose another area, period or scenes."),
    "invalid_geometry": QT_TRANSLATE_NOOP(
        "@default", "Repair the feature named above (Processing Toolbox > Vector geometry > Fix geometries) or leave "
                    "it out of the selection."),
    "not_polygon": QT_TRANSLATE_NOOP(
        "@default", "Give a polygon layer: parcels and areas of interest are polygons."),
    "map_not_classes": QT_TRANSLATE_NOOP(
        "@default", "Give the land-cover map written by '5 Predict land cover' (class ids), not the confidence "
                    "raster or a Sentinel scene."),
    "aoi_not_polygon": _AREA,
    "parcels_outside": _AREA,
    "scenes_disjoint": _AREA,
    "no_s1_s2_overlap": _AREA,
    "bad_poi": _PERIOD,
    "empty_poi": _PERIOD,
    "date_not_found": _PERIOD,
    "bad_date": _PERIOD,
    "bad_dates": _PERIOD,
    "crop_too_large": _SIZE,
    "grid_too_small": _SIZE,
    "chip_too_large": _SIZE,
    "grid_too_large": QT_TRANSLATE_NOOP(
        "@default", "Choose a smaller area of interest (or a coarser grid resolution, an advanced parameter)."),
    "input_not_found": QT_TRANSLATE_NOOP(
        "@default", "A file or folder given to this step does not exist (any more): check the inputs (a layer whose "
                    "file moved shows a warning sign in the Layers panel)."),
    "corrupt_file": QT_TRANSLATE_NOOP(
        "@default", "A raster or vector cannot be read: open it in QGIS to check it, or give another copy."),
    "unknown_encoder": QT_TRANSLATE_NOOP(
        "@default", "Choose an encoder from the list (resnet18, resnet34, resnet50) or another timm model name."),
    "unknown_backbone": QT_TRANSLATE_NOOP(
        "@default", "Choose an encoder from the list (resnet18, resnet34, resnet50) or another timm model name."),
    "init_mismatch": _INIT,
    "weights_mismatch": _INIT,
    "bad_argument": QT_TRANSLATE_NOOP(
        "@default", "A value is not accepted (see above). The 'Further backend options' (advanced parameters) go to "
                    "the backend as they are: check them too."),
    "backend_not_started": NO_BACKEND_HINT,
}

#: The backend's option names in its messages -> the names of the same settings in QGIS.
OPTION_NAMES: dict[str, str] = {
    "--resume": QT_TRANSLATE_NOOP("@default", "'Resume'"),
    "--overwrite": QT_TRANSLATE_NOOP("@default", "'Replace'"),
    "--out": QT_TRANSLATE_NOOP("@default", "the output"),
    "--data": QT_TRANSLATE_NOOP("@default", "the chip store"),
    "--init": QT_TRANSLATE_NOOP("@default", "the model package to start from"),
    "--model": QT_TRANSLATE_NOOP("@default", "the model package"),
    "--devices": QT_TRANSLATE_NOOP("@default", "Devices"),
    "--date": QT_TRANSLATE_NOOP("@default", "the date"),
    "--poi": QT_TRANSLATE_NOOP("@default", "the period of interest"),
    "--aoi": QT_TRANSLATE_NOOP("@default", "the area of interest"),
    "--bbox": QT_TRANSLATE_NOOP("@default", "the area of interest"),
    "--crop": QT_TRANSLATE_NOOP("@default", "the crop size"),
    "--tile": QT_TRANSLATE_NOOP("@default", "the tile size"),
    "--batch-size": QT_TRANSLATE_NOOP("@default", "the batch size"),
    "--label-fraction": QT_TRANSLATE_NOOP("@default", "the fraction of the labels"),
    "--label-fractions": QT_TRANSLATE_NOOP("@default", "the label fractions"),
    "--encoder": QT_TRANSLATE_NOOP("@default", "the encoder"),
    "--variant": QT_TRANSLATE_NOOP("@default", "the RS-BYOL variant"),
    "--s2": QT_TRANSLATE_NOOP("@default", "the Sentinel-2 scenes"),
    "--s1": QT_TRANSLATE_NOOP("@default", "the Sentinel-1 scenes"),
    "--parcels": QT_TRANSLATE_NOOP("@default", "the parcels"),
    "--class-field": QT_TRANSLATE_NOOP("@default", "the class field"),
}

_OPTION = re.compile(r"--[a-z0-9][a-z0-9-]*")


def gui_hint(code: str) -> str | None:
    """The plugin's own hint for a backend error code, translated, or None when the plugin has none."""
    hint = GUI_HINTS.get(code)
    if hint is None:
        return None
    return tr(hint).format(options=tr(OPTIONS_PATH), setup=tr(SETUP_MENU_PATH))


def gui_words(message: str) -> str:
    """The backend's message with its option names replaced by the names of the settings in QGIS."""
    return _OPTION.sub(lambda m: tr(OPTION_NAMES[m.group(0)]) if m.group(0) in OPTION_NAMES else m.group(0),
                       message)


def error_text(command: str, final: dict[str, Any]) -> str:
    """The text of the error a failed backend command becomes in QGIS (a QgsProcessingException's message)."""
    code = str(final.get("code", "error"))
    detail = str(final.get("detail") or "")
    if code == "backend_crashed" and "invalid choice" in detail and repr(command) in detail:
        return tr("This eo-ssl backend has no '{command}' command (it is older than the plugin, or that part of the "
                  "backend is not installed).\nUpdate the backend (reinstall the plugin, or pull the checkout) and "
                  "check Raster > eo-ssl > Backend diagnostics.").format(command=command)
    if code == "cancelled":
        return tr("Cancelled: the backend was stopped. Whatever it had finished is kept (a training run leaves its "
                  "last checkpoint: run it again with 'Resume' to continue).")
    known = gui_hint(code)
    message = tr("eo-ssl {command} failed [{code}]: {message}").format(
        command=command, code=code, message=gui_words(str(final.get("message", ""))) if known else
        final.get("message", ""))
    hint = known if known is not None else final.get("hint")
    if hint:
        message += "\n" + tr("What to do: {hint}").format(hint=hint)
    if detail:
        message += "\n\n" + tr("End of the backend's error output:") + "\n" + "\n".join(
            detail.strip().splitlines()[-15:])
    return message
