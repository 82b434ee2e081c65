"""The toolbar dialog: a thin client over the eo-ssl Processing algorithms.

Why near 500 lines: what the dialog does is one state over one form (the steps possible, the chip store, the job's
progress and log), kept together; its widgets are built in :mod:`.dialog_tabs`.

Pick Sentinel-2 / Sentinel-1 layers of the project (or feature rasters: an embedding), an AOI (polygon layer,
optionally only its selected features, or the current map extent), a POI, the method and its main hyper-parameters,
the device and an output folder; the dialog turns that into a chain of algorithm runs (prepare -> pre-train ->
fine-tune -> evaluate -> predict -> label parcels; :mod:`.dialog_plan`) and runs it in the background (:mod:`.jobs`),
with progress, ETA, a live loss curve, the log and Cancel. When it is done, the outputs are in the project (styled
prediction, confidence, labelled parcels) and the report is one click away. Its widgets are built by
:mod:`.dialog_tabs`; which layer looks like what is :mod:`.layer_sniffing`'s guess.

The chip store goes to the cache folder, keyed by its inputs (:mod:`.chipstores`): a second run on the same layers,
area and period (another method, Resume) reuses it and says so. The default RS-BYOL variant ``auto`` fits the layers
checked ('single' with Sentinel-1, 's2-only' without); a variant that needs Sentinel-1 without a Sentinel-1 layer is
refused before anything starts.
"""

from __future__ import annotations

import contextlib
import html
import os
import re
from pathlib import Path
from typing import Any

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsMapLayerType,
    QgsProcessingFeatureSourceDefinition,
    QgsProject,
)
from qgis.PyQt import sip
from qgis.PyQt.QtCore import Qt, QUrl, pyqtSignal
from qgis.PyQt.QtGui import QIcon
from qgis.PyQt.QtWidgets import QDialog, QListWidget, QListWidgetItem, QWidget

from . import backend_spec, chipstores, names, settings, tasks
from .algorithms.pretrain import S1_VARIANTS
from .algorithms.styling import OUTPUT_PROPERTY
from .dialog_plan import FEW_LABEL_STEPS, Choices, model_problem, plan_steps
from .dialog_tabs import DialogTabs
from .dialog_widgets import spin_value
from .i18n import tr
from .jobs import JobRunner, Step
from .layer_sniffing import band_names, class_field_of, looks_like_features, looks_like_s1, looks_like_s2
from .paths import ICON

__all__ = ["EoSslDialog"]


class EoSslDialog(DialogTabs, QDialog):
    """The toolbar dialog."""

    jobFinished = pyqtSignal(bool, str)  # noqa: N815

    def __init__(self, iface=None, parent: QWidget | None = None, project: QgsProject | None = None,
                 open_setup=None) -> None:
        super().__init__(parent or (iface.mainWindow() if iface is not None else None))
        self.iface = iface
        self.project = project or QgsProject.instance()
        self.open_setup = open_setup
        self.job: JobRunner | None = None
        self.probe_task: tasks.CallTask | None = None
        self.backend_report = None
        self.report_path: str | None = None
        self.chip_store: Path | None = None
        self.reused_store: dict | None = None
        self._description: tuple[Path, dict] | None = None
        self._parcels_seen = None  # the parcels layer the step defaults were set for
        self.setWindowTitle(tr("eo-ssl — self-supervised land cover from Sentinel-1/2"))
        self.setWindowIcon(QIcon(str(ICON)))
        self.setObjectName("EoSslDialog")
        self._build()
        self.refresh_layers()
        self._update_steps()
        self.project.layersAdded.connect(self.refresh_layers)
        self.project.layersRemoved.connect(self.refresh_layers)

    # == project layers ============================================================================================
    def refresh_layers(self, *_args) -> None:
        """Fill the layer lists with the project's raster layers (band names shown), keeping what was checked. The
        Sentinel-1 list shows the layers that look like Sentinel-1 (VV/VH bands, or S1 in the name), the feature
        list those that look like an embedding (:func:`.layer_sniffing.looks_like_features`), the Sentinel-2 list
        the others; 'Show all raster layers' shows every raster in each, the likely ones first."""
        lists = (self.s2_list, self.s1_list, self.features_list)
        checked = {lst: self.checked_layer_ids(lst) for lst in lists}
        first = not any(checked.values())
        rasters = [lyr for lyr in self.project.mapLayers().values() if lyr.type() == QgsMapLayerType.RasterLayer
                   and lyr.providerType() == "gdal" and not lyr.customProperty(OUTPUT_PROPERTY)]
        rasters.sort(key=lambda lyr: lyr.name())
        is_s1 = {lyr.id(): looks_like_s1(lyr) for lyr in rasters}
        is_features = {lyr.id(): not is_s1[lyr.id()] and looks_like_features(lyr) for lyr in rasters}
        other = {k: not is_s1[k] and not is_features[k] for k in is_s1}
        is_s2 = {lyr.id(): other[lyr.id()] and looks_like_s2(lyr) for lyr in rasters}
        any_s2 = any(is_s2.values())
        likely = {self.s2_list: other, self.s1_list: is_s1, self.features_list: is_features}
        default = {self.s2_list: is_s2 if any_s2 else other, self.s1_list: is_s1, self.features_list: is_features}
        show_all = self.all_rasters.isChecked()
        for lst in lists:
            shown = [lyr for lyr in rasters if show_all or likely[lst][lyr.id()]]
            shown.sort(key=lambda lyr, lst=lst: not likely[lst][lyr.id()])
            lst.blockSignals(True)
            lst.clear()
            for layer in shown:
                names_ = band_names(layer)
                text = ", ".join(names_[:13]) + (" …" if len(names_) > 13 else "")
                item = QListWidgetItem(tr("{layer} — {n} band(s): {bands}").format(
                    layer=layer.name(), n=len(names_), bands=text))
                item.setData(Qt.ItemDataRole.UserRole, layer.id())
                item.setToolTip(layer.source())
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                state = default[lst][layer.id()] if first else layer.id() in checked[lst]
                item.setCheckState(Qt.CheckState.Checked if state else Qt.CheckState.Unchecked)
                lst.addItem(item)
            lst.blockSignals(False)
        self._update_variant_hint()

    @staticmethod
    def checked_layer_ids(lst: QListWidget) -> list[str]:
        return [lst.item(i).data(Qt.ItemDataRole.UserRole) for i in range(lst.count())
                if lst.item(i).checkState() == Qt.CheckState.Checked]

    def set_checked_layers(self, lst: QListWidget, layer_ids: list[str]) -> None:
        for i in range(lst.count()):
            item = lst.item(i)
            checked = item.data(Qt.ItemDataRole.UserRole) in layer_ids
            item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)

    def listed_layer_ids(self, lst: QListWidget) -> list[str]:
        return [lst.item(i).data(Qt.ItemDataRole.UserRole) for i in range(lst.count())]

    # == the pre-training variant ==================================================================================
    def resolved_variant(self) -> str:
        """The RS-BYOL variant this run uses: 'auto' becomes 'single' with Sentinel-1 layers, else 's2-only'."""
        variant = self.variant.currentText()
        if variant == "auto":
            return "single" if self.checked_layer_ids(self.s1_list) else "s2-only"
        return variant

    def _update_variant_hint(self, *_args) -> None:
        if not hasattr(self, "variant_hint"):
            return
        rs = self.method.currentText() == "rs-byol"
        self.variant.setEnabled(rs)
        if not rs:
            self.variant_hint.setText("")
            return
        has_s1 = bool(self.checked_layer_ids(self.s1_list))
        variant = self.variant.currentText()
        if variant == "auto":
            text = tr("auto: 'single' (a Sentinel-2 band against a Sentinel-1 polarisation), as Sentinel-1 layers "
                      "are checked.") if has_s1 else tr(
                "auto: 's2-only' (two Sentinel-2 band draws), as no Sentinel-1 layer is checked.")
        elif variant in S1_VARIANTS and not has_s1:
            text = f"<span style='color:#b00'>{html.escape(self.s1_variant_problem(variant))}</span>"
        else:
            text = ""
        self.variant_hint.setText(text)

    @staticmethod
    def s1_variant_problem(variant: str) -> str:
        return tr("The RS-BYOL variant '{variant}' pairs Sentinel-2 with Sentinel-1, and no Sentinel-1 layer is "
                  "checked on the Data tab: check one, or choose the variant 'auto' or 's2-only'.").format(
            variant=variant)

    # == environment ===============================================================================================
    def check_environment(self) -> None:
        """Start the backend probe in the background; fills the device choice when it ends."""
        if self.probe_task is not None:
            return

        def done(task: tasks.CallTask) -> None:
            if sip.isdeleted(self):
                return
            self.probe_task = None
            if task.result is None:
                self.device_label.setText(tr("The backend check failed: {error}").format(error=task.error))
            else:
                self.set_backend_report(task.result)

        self.probe_task = tasks.probe(done)

    def _open_setup(self) -> None:
        if self.open_setup is not None:
            self.open_setup()
        else:
            from .setup_panel import BackendSetupDialog

            dlg = BackendSetupDialog(self)
            dlg.backendReady.connect(self.set_backend_report)
            dlg.show()
            self._setup = dlg

    def show_diagnostics(self) -> None:
        from .diagnostics import DiagnosticsDialog

        dlg = DiagnosticsDialog(self, open_setup=self._open_setup)
        dlg.reportReady.connect(self.set_backend_report)
        dlg.show()
        self._diagnostics = dlg

    def _select_default_device(self) -> None:
        index = self.device.findData(settings.device())
        self.device.setCurrentIndex(index if index >= 0 else 0)

    def set_backend_report(self, report) -> None:
        self.backend_report = report
        if report is None:
            return
        chosen = self.device.currentData()
        while self.device.count() > 2:
            self.device.removeItem(2)
        self.setup_button.setVisible(not report.ok)
        if not report.ok:
            self.device_label.setText("<span style='color:#b00'>{}</span><br>{}".format(
                html.escape(report.summary()), html.escape(tr(
                    "Click '{setup}' to create the backend environment or choose an existing Python.").format(
                    setup=tr(names.SETUP_ACTION)))))
            return
        info = report.info
        if info.get("device") == "cuda":
            self.device.addItem(tr("1 GPU: {name}").format(name=info.get("device_name")), "1")
            for n in range(2, int(info.get("device_count") or 1) + 1):
                self.device.addItem(tr("{n} GPUs (data-parallel)").format(n=n), str(n))
        # what is chosen stays (the user's choice; a default device of the settings such as "2" GPUs exists only now)
        want = settings.device() if chosen == "auto" else chosen
        index = self.device.findData(want)
        self.device.setCurrentIndex(index if index >= 0 else max(self.device.findData(chosen), 0))
        self.device_label.setText(html.escape(report.summary()))

    # == the job ===================================================================================================
    def _on_parcels_changed(self, layer) -> None:
        """A parcels layer: its class field guessed (never ``fid``), and, the first time one is chosen, the few-label
        map's steps ticked (fine-tune the pixel classifier, predict, compare report; pre-training one tick away)."""
        self.class_field.setLayer(layer)
        self.class_field.setField(class_field_of(layer) or "")
        had = self._parcels_seen is not None
        self._parcels_seen = layer
        if layer is not None and not had:
            for name, on in FEW_LABEL_STEPS.items():
                getattr(self, f"step_{name}").setChecked(on)
            self.ft_model.setCurrentIndex(max(self.ft_model.findData("pixel"), 0))
        self._update_steps()

    def _update_model_fields(self, *_args) -> None:
        pixel = (self.ft_model.currentData() or "pixel") == "pixel"
        self.quick.setEnabled(pixel)
        self.ft_epochs.setEnabled(not pixel)

    def _update_steps(self, *_args) -> None:
        if not hasattr(self, "model_package"):
            return
        has_parcels = self.parcels_layer.currentLayer() is not None
        for cb in (self.step_finetune, self.step_label):
            cb.setEnabled(has_parcels)
            if not has_parcels:
                cb.setChecked(False)
        self.step_evaluate.setEnabled(has_parcels)  # compare: the classic classifiers and random init at least
        if not self.step_evaluate.isEnabled():
            self.step_evaluate.setChecked(False)
        model_text = self.model_package.filePath().strip()
        # a model folder typed or picked keeps Predict available: a wrong one is said out loud, not greyed out
        can_predict = (has_parcels and self.step_finetune.isChecked()) or bool(model_text)
        self.step_predict.setEnabled(can_predict)
        if not self.step_predict.isEnabled():
            self.step_predict.setChecked(False)
        if not self.step_predict.isChecked():
            self.step_label.setChecked(False)
            self.step_label.setEnabled(False)
        problem = model_problem(model_text) if not self.step_finetune.isChecked() else None
        self.model_hint.setText(f"<span style='color:#b00'>{html.escape(problem)}</span>" if problem else "")
        self.model_hint.setVisible(bool(problem))

    def existing_model(self) -> Path | None:
        """The model package chosen to predict with (instead of fine-tuning in this run), if any."""
        text = self.model_package.filePath().strip() if hasattr(self, "model_package") else ""
        return Path(text) if text and model_problem(text) is None else None

    def _input_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"S2": self.checked_layer_ids(self.s2_list)}
        s1 = self.checked_layer_ids(self.s1_list)
        if s1:
            params["S1"] = s1
        features = self.checked_layer_ids(self.features_list)
        if features:  # prepare --features, predict --features (with the encoding unless 'auto')
            params["FEATURES"] = features
            if self.features_preset.currentText() != backend_spec.default("prepare", "--features-preset"):
                params["FEATURES_PRESET"] = self.features_preset.currentText()
        if self.aoi_layer_radio.isChecked() and self.aoi_layer.currentLayer() is not None:
            layer = self.aoi_layer.currentLayer()
            params["AOI"] = QgsProcessingFeatureSourceDefinition(layer.id(), self.aoi_selected.isChecked())
        elif self.aoi_extent_radio.isChecked():
            params["EXTENT"] = self.map_extent_string()
        if self.poi_check.isChecked():
            params["POI_START"] = self.poi_start.date().toString(Qt.DateFormat.ISODate)
            params["POI_END"] = self.poi_end.date().toString(Qt.DateFormat.ISODate)
        return params

    def map_extent_string(self) -> str:
        if self.iface is None:
            raise ValueError(tr("There is no map canvas to take the extent from."))
        canvas = self.iface.mapCanvas()
        e = canvas.extent()
        crs: QgsCoordinateReferenceSystem = canvas.mapSettings().destinationCrs()
        return f"{e.xMinimum()},{e.xMaximum()},{e.yMinimum()},{e.yMaximum()} [{crs.authid() or crs.toWkt()}]"

    def inputs_description(self, inputs: dict[str, Any], parcels, field: str) -> dict[str, Any]:
        """What the chip store is prepared from (:mod:`.chipstores`); raises NotReusable for an input that cannot
        be fingerprinted."""
        def layers(ids: list[str]) -> list[dict]:
            return [chipstores.layer_signature(self.project.mapLayer(i)) for i in ids]

        description: dict[str, Any] = {"s2": layers(inputs["S2"]), "s1": layers(inputs.get("S1", [])),
                                       "poi": [inputs.get("POI_START"), inputs.get("POI_END")],
                                       "extent": inputs.get("EXTENT")}
        if inputs.get("FEATURES"):  # only then: the keys of the stores prepared without features stay as they were
            description["features"] = layers(inputs["FEATURES"])
            description["features_preset"] = inputs.get("FEATURES_PRESET")
        aoi = inputs.get("AOI")
        if aoi is not None:
            layer = self.aoi_layer.currentLayer()
            description["aoi"] = chipstores.layer_signature(layer)
            if aoi.selectedFeaturesOnly:
                description["aoi"]["selected"] = sorted(layer.selectedFeatureIds())
        if parcels is not None and field:
            description["parcels"] = {**chipstores.layer_signature(parcels), "class_field": field}
        return description

    def chip_store_for(self, inputs: dict[str, Any], parcels, field: str,
                       out: Path) -> tuple[Path, dict | None, dict | None]:
        """(where the chip store of these inputs lives, its manifest when it is complete already and is reused, what
        it is prepared from). Inputs that cannot be fingerprinted get a store in the output folder, prepared every
        time."""
        try:
            description = self.inputs_description(inputs, parcels, field)
        except (chipstores.NotReusable, OSError) as exc:
            self.append_log(tr("The chip store is prepared again ({why}).").format(why=exc), "info")
            return out / "chips", None, None
        store = chipstores.store_path(settings.cache_dir(), chipstores.key(description))
        return store, chipstores.existing(store), description

    def choices(self, chips: Path | None = None, store_ready: bool = False) -> Choices:
        """What the widgets say (:class:`.dialog_plan.Choices`)."""
        parcels = self.parcels_layer.currentLayer()
        pretrain_rs = self.method.currentText() == "rs-byol"
        variant = self.resolved_variant() if pretrain_rs else None
        return Choices(
            out=self.output_dir.filePath().strip(), inputs=self._input_params(), chips=chips or Path(),
            store_ready=store_ready, device=self.device.currentData() or "auto",
            parcels=parcels.id() if parcels is not None else None, class_field=self.class_field.currentField(),
            pretrain=self.step_pretrain.isChecked(), finetune=self.step_finetune.isChecked(),
            evaluate=self.step_evaluate.isChecked(), predict=self.step_predict.isChecked(),
            label=self.step_label.isChecked(), method=self.method.currentText(), variant=variant,
            s1_variant_problem=(self.s1_variant_problem(variant) if variant in S1_VARIANTS
                                and not self.checked_layer_ids(self.s1_list) else None),
            encoder=self.encoder.currentText().strip(), epochs=self.epochs.value(),
            max_steps=spin_value(self.max_steps), batch_size=spin_value(self.batch_size), crop=self.crop.value(),
            resume=self.resume.isChecked(), arch=self.ft_model.currentData() or "pixel",
            quick=self.quick.isChecked(), ft_epochs=self.ft_epochs.value(),
            label_fraction=self.label_fraction.value(), tile=spin_value(self.tile),
            model=self.model_package.filePath().strip())

    def build_steps(self) -> list[Step]:
        """The algorithm runs for the current choices (raises ValueError with a message for the user)."""
        c = self.choices()
        plan_steps(c, self.project)  # the checks first: nothing is fingerprinted for choices that cannot run
        parcels = self.parcels_layer.currentLayer()
        chips, manifest, description = self.chip_store_for(c.inputs, parcels, c.class_field, Path(c.out))
        self.chip_store, self.reused_store = chips, manifest
        self._description = (chips, description) if description is not None and manifest is None else None
        c.chips, c.store_ready = chips, manifest is not None
        return plan_steps(c, self.project)

    def start_job(self) -> bool:
        if self.job is not None and self.job.running:
            return False
        self.log_view.clear()  # each run has its own log, followed from its first line
        try:
            steps = self.build_steps()
        except ValueError as exc:
            self.append_log(str(exc), "error")
            self.stage_label.setText("<b style='color:#b00'>{}</b> {}".format(tr("Cannot start:"),
                                                                             html.escape(str(exc))))
            return False
        out = Path(self.output_dir.filePath())
        out.mkdir(parents=True, exist_ok=True)
        settings.put(settings.SETTINGS_LAST_OUTPUT, str(out))
        if self._description is not None:
            with contextlib.suppress(OSError):
                chipstores.remember(*self._description)
        self.loss_plot.clear()
        self.progress.setValue(0)
        self.progress.setFormat("%p%")
        self.report_label.setText("")
        self.report_path = None
        self.append_log(tr("Output folder: {path}").format(path=out), "info")
        if self.reused_store is not None:
            self.append_log(tr("Prepare data: reusing the chip store {path} (prepared {when} from the same layers, "
                               "area and period).").format(path=self.chip_store,
                                                           when=self.reused_store.get("provenance", {}).get(
                                                               "created", "?")), "info")
        if not steps:
            message = tr("Nothing to run: the chip store is ready ({path}). Tick a step on the Training tab "
                         "(Fine-tune, Predict…) to go on.").format(path=self.chip_store)
            self._on_job_finished(True, message)
            self.stage_label.setText(f"<b>{html.escape(message)}</b>")  # not a success in green: nothing ran
            return True
        self.job = JobRunner(steps, self.project, self)
        self.job.stepStarted.connect(self._on_step_started)
        self.job.stepFinished.connect(self._on_step_finished)
        self.job.progress.connect(lambda v: self.progress.setValue(int(round(v))))
        self.job.progressText.connect(self._on_progress_text)
        self.job.log.connect(self.append_log)
        self.job.backendEvent.connect(self._on_backend_event)
        self.job.finished.connect(self._on_job_finished)
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.tabs.setEnabled(False)
        self.job.start()
        return True

    def cancel_job(self) -> None:
        if self.job is not None and self.job.running:
            self.job.cancel()
            self.cancel_button.setEnabled(False)

    def _on_step_started(self, index: int, title: str) -> None:
        total = len(self.job.steps) if self.job else 1
        self.stage_label.setText("<b>{}</b>".format(html.escape(tr("Step {k}/{n}: {title}").format(
            k=index + 1, n=total, title=title))))
        # the previous step's text goes at once (the next backend needs seconds to send its first progress)
        self.progress.setValue(0)
        self.progress.setFormat("%p%  " + tr("starting…"))
        self.eta_label.setText("")
        if self.job and self.job.steps[index].alg_id in ("eo_ssl:pretrain", "eo_ssl:finetune"):
            self.loss_plot.start_series(title)

    def _on_progress_text(self, text: str) -> None:
        eta = re.search(r"ETA ([0-9:]+)", text)
        self.eta_label.setText(f"ETA {eta.group(1)}" if eta else "")
        self.progress.setFormat(f"%p%  {text.split(' · ')[0]}" if text else "%p%")

    def _on_backend_event(self, event: dict) -> None:
        if self.job is None or self.job.index < 0:
            return
        if self.job.steps[self.job.index].alg_id in ("eo_ssl:pretrain", "eo_ssl:finetune"):
            self.loss_plot.add_event(event)

    def _on_step_finished(self, index: int, ok: bool, results: dict) -> None:
        step = self.job.steps[index] if self.job else None
        if ok and step is not None and step.alg_id == "eo_ssl:evaluate" and results.get("REPORT"):
            self.report_path = str(results["REPORT"])
            url = QUrl.fromLocalFile(self.report_path).toString()
            self.report_label.setText("{} <a href=\"{}\">{}</a>".format(tr("Report:"), url,
                                                                      html.escape(self.report_path)))

    def _on_job_finished(self, ok: bool, message: str) -> None:
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.tabs.setEnabled(True)
        if ok:
            self.progress.setValue(100)
        self.progress.setFormat("%p%")
        self.eta_label.setText("")
        colour = "#1a7f37" if ok else "#b00"
        self.stage_label.setText(f"<b style='color:{colour}'>{html.escape(message)}</b>")
        self.append_log(message, "info" if ok else "error")
        self.log_view.show_end()  # the outcome (and an error above it) in sight, even after scrolling up
        self.jobFinished.emit(ok, message)

    def append_log(self, text: str, level: str = "info") -> None:
        prefix = {"warning": "⚠ ", "error": "✖ ", "step": "", "debug": "· "}.get(level, "")
        for line in str(text).splitlines() or [""]:
            self.log_view.append_line(prefix + line)

    # == lifecycle =================================================================================================
    def showEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)
        if self.backend_report is None and os.environ.get("EO_SSL_NO_PROBE") != "1":
            self.check_environment()

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        # a running job goes on in the task manager; the dialog only hides
        super().closeEvent(event)

    def disconnect_project(self) -> None:
        for sig in (self.project.layersAdded, self.project.layersRemoved):
            with contextlib.suppress(TypeError):
                sig.disconnect(self.refresh_layers)
