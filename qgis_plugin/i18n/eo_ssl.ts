<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1">
<context>
    <name>@default</name>
    <message>
        <location filename="../algorithms/base.py" line="36"/>
        <source>&lt;p&gt;&lt;i&gt;eo-ssl runs this step in its own Python process (the backend; see Raster &amp;gt; eo-ssl &amp;gt; Backend diagnostics), so QGIS never loads PyTorch. The exact command line is shown at the top of the log: the same command works in a terminal (&lt;code&gt;python -m backend ...&lt;/code&gt;).&lt;/i&gt;&lt;/p&gt;</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/backend_run.py" line="155"/>
        <source>nothing set</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/backend_run.py" line="156"/>
        <source>eo-ssl has no backend Python yet (looked at: {looked}).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../messages.py" line="213"/>
        <source>What to do: {hint}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/backend_run.py" line="224"/>
        <source>Cancel: asking the backend to stop at its next safe point…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/base.py" line="173"/>
        <source>Cannot read the further backend options {text}: {error}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/parcel_inputs.py" line="47"/>
        <source>Give the labelled parcels and their class field together (or neither).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/prepare.py" line="43"/>
        <source>1 Prepare data</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/base.py" line="45"/>
        <source>1 Data</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/prepare.py" line="45"/>
        <source>&lt;p&gt;Builds a &lt;b&gt;chip store&lt;/b&gt; (the training format) from Sentinel-2 (and optionally Sentinel-1) scenes over an area and a period of interest: every scene is read window by window onto one 10 m grid (Sentinel-1 reprojected, kept in dB), with normalisation statistics and, when labelled parcels are given, the rasterised labels and a train/validation/test split by parcel or by spatial block (never by pixel).&lt;/p&gt;&lt;p&gt;Instead of scenes, a EuroSAT-style chip folder (&lt;code&gt;DIR/&amp;lt;Class&amp;gt;/*.tif&lt;/code&gt;) can be given.&lt;/p&gt;&lt;p&gt;The output folder feeds &lt;i&gt;Pre-train&lt;/i&gt;, &lt;i&gt;Fine-tune&lt;/i&gt; and &lt;i&gt;Evaluate&lt;/i&gt;.&lt;/p&gt;</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/prepare.py" line="85"/>
        <source>Give Sentinel-2 scenes or a chip folder, not both.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/prepare.py" line="110"/>
        <source>The backend finished but {out} holds no manifest.json.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/export_dataset.py" line="53"/>
        <source>7 Export dataset</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/base.py" line="46"/>
        <source>4 Parcels</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/export_dataset.py" line="55"/>
        <source>&lt;p&gt;Writes a training dataset from labelled parcels: one georeferenced GeoTIFF chip per sample (all chosen bands), a mask GeoTIFF per chip (class ids, ignore value), &lt;code&gt;index.gpkg&lt;/code&gt; (chip footprints with split, class counts and source parcels) and &lt;code&gt;dataset.json&lt;/code&gt; (bands, dates, classes with colours, grid, normalisation, provenance). The imagery is a chip store (from &lt;i&gt;Prepare data&lt;/i&gt;) or Sentinel scenes.&lt;/p&gt;&lt;p&gt;Typical input: the output of &lt;i&gt;Label parcels&lt;/i&gt; with status &apos;labelled&apos;, or parcels you labelled by hand with the eo-ssl parcel labelling tool.&lt;/p&gt;</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/export_dataset.py" line="140"/>
        <source>The backend finished but wrote no chip index ({index}).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/inputs.py" line="158"/>
        <source>A raster input could not be loaded.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/inputs.py" line="160"/>
        <source>Layer &apos;{layer}&apos; is not a raster file (provider {provider}): eo-ssl reads Sentinel scenes from files (GeoTIFF, JP2, ...). Save it as a GeoTIFF first (Raster &gt; Conversion &gt; Translate).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/inputs.py" line="194"/>
        <source>Could not write the &apos;{name}&apos; features to a file for the backend.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../messages.py" line="72"/>
        <source>Give at least one Sentinel-2 layer (or a Sentinel-2 folder).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/inputs.py" line="247"/>
        <source>Give the area of interest as polygons or as an extent, not both.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/inputs.py" line="256"/>
        <source>The area-of-interest extent is empty.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/inputs.py" line="277"/>
        <source>No output folder given for {name}.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/predict.py" line="44"/>
        <source>5 Predict land cover</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/base.py" line="46"/>
        <source>3 Mapping</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/predict.py" line="46"/>
        <source>&lt;p&gt;Predicts a land-cover raster over the area of interest with a fine-tuned model package: tiled, overlapping windows blended without seams, written as a compressed GeoTIFF of class ids with a colour table and a &lt;code&gt;.qml&lt;/code&gt; style (the class legend), plus an optional confidence raster (the highest class probability, 0..1).&lt;/p&gt;&lt;p&gt;The model&apos;s bands are matched to the inputs by name; a model whose bands are missing from the inputs is refused before any work. Loaded into the project with the class style and legend.&lt;/p&gt;</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/predict.py" line="100"/>
        <source>The backend finished but wrote no map ({out}).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/predict.py" line="105"/>
        <source>The backend finished but wrote no confidence raster ({conf}).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/label_parcels.py" line="55"/>
        <source>6 Label parcels</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/label_parcels.py" line="57"/>
        <source>&lt;p&gt;Labels every parcel from a land-cover map: the majority class (id and name), its share of the parcel&apos;s valid pixels, the mean confidence, the class entropy, pixel counts and a &lt;b&gt;status&lt;/b&gt;: &lt;i&gt;labelled&lt;/i&gt;, &lt;i&gt;uncertain&lt;/i&gt; (majority share or confidence below the thresholds), &lt;i&gt;too_small&lt;/i&gt;, &lt;i&gt;no_data&lt;/i&gt;, &lt;i&gt;outside_raster&lt;/i&gt;, or a geometry problem. Every input feature is in the output with all its attributes; the input is never modified.&lt;/p&gt;&lt;p&gt;Review the uncertain parcels with the eo-ssl parcel labelling tool (&apos;next uncertain parcel&apos;), then export a dataset.&lt;/p&gt;</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/label_parcels.py" line="105"/>
        <source>Give the parcels to label.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/label_parcels.py" line="113"/>
        <source>The labelled parcels are written as a GeoPackage: {out} must end in .gpkg.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/label_parcels.py" line="122"/>
        <source>The backend finished but wrote no parcels ({out}).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/styling.py" line="139"/>
        <source>No class style found next to {path} (.qml).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/styling.py" line="139"/>
        <source>the map</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/styling.py" line="160"/>
        <source>Labelled parcels left unstyled: {error}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/training_shared.py" line="38"/>
        <source>The chip store {data} is not a folder: run &apos;1 Prepare data&apos; first.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/pretrain.py" line="90"/>
        <source>The chip store has no Sentinel-1 data, and the RS-BYOL variant &apos;{variant}&apos; pairs Sentinel-2 bands with Sentinel-1 polarisations. Choose the variant &apos;auto&apos; or &apos;s2-only&apos; (two Sentinel-2 band draws), another method, or prepare the data with Sentinel-1 layers.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/pretrain.py" line="95"/>
        <source>The chip store has no Sentinel-1 data: choose the input bands &apos;s2&apos;, or prepare the data with Sentinel-1 layers.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/pretrain.py" line="102"/>
        <source>2 Pre-train (self-supervised)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/base.py" line="45"/>
        <source>2 Training</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/pretrain.py" line="104"/>
        <source>&lt;p&gt;Self-supervised pre-training of an encoder on the unlabelled imagery of a chip store, on the GPU when there is one (else the CPU, slowly).&lt;/p&gt;&lt;ul&gt;&lt;li&gt;&lt;b&gt;rs-byol&lt;/b&gt;: the two views of a crop are a Sentinel-2 band and a Sentinel-1 polarisation of the same place. Variants: &lt;i&gt;auto&lt;/i&gt; (the default: &lt;i&gt;single&lt;/i&gt; when the chip store has Sentinel-1, &lt;i&gt;s2-only&lt;/i&gt; when it has not), &lt;i&gt;single&lt;/i&gt; (one S2 band vs one S1 polarisation, 1-channel encoder), &lt;i&gt;three&lt;/i&gt; (three S2 bands vs VV/VH + a copy), &lt;i&gt;s2-only&lt;/i&gt; (two S2 band draws, no S1), &lt;i&gt;rgb-s1s2&lt;/i&gt; (RGB vs S1 + two non-RGB bands). Needs Sentinel-1 in the chip store except for s2-only.&lt;/li&gt;&lt;li&gt;&lt;b&gt;byol, moco-v2, simsiam, barlow-twins, swav&lt;/b&gt;: on all bands of the chip store.&lt;/li&gt;&lt;/ul&gt;&lt;p&gt;Output: a model package folder (weights.safetensors + model.json + training_curves.png). Cancel stops at the next step and keeps the last checkpoint: run again with &lt;i&gt;Resume&lt;/i&gt; to continue.&lt;/p&gt;</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/pretrain.py" line="197"/>
        <source>RS-BYOL variant &apos;auto&apos;: &apos;{variant}&apos; ({why}).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/pretrain.py" line="197"/>
        <source>the chip store has Sentinel-1</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/pretrain.py" line="197"/>
        <source>the chip store has no Sentinel-1</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/training_shared.py" line="71"/>
        <source>The backend finished but {out} holds no model.json.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/finetune.py" line="70"/>
        <source>3 Fine-tune</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/evaluate.py" line="68"/>
        <source>4 Evaluate</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/evaluate.py" line="177"/>
        <source>The backend finished but wrote no report ({html}).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../diagnostics.py" line="47"/>
        <source>eo-ssl backend diagnostics</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../diagnostics.py" line="55"/>
        <source>Checking…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../diagnostics.py" line="62"/>
        <source>Check again</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../diagnostics.py" line="63"/>
        <source>Copy report</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../diagnostics.py" line="86"/>
        <source>Checking the backend environment (this starts its Python and imports torch)…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../tasks.py" line="54"/>
        <source>eo-ssl: checking the backend environment</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../options_page.py" line="174"/>
        <source>The check failed: {error}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../diagnostics.py" line="105"/>
        <source>Ready</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../diagnostics.py" line="105"/>
        <source>Not usable</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../diagnostics.py" line="113"/>
        <source>Report copied to the clipboard.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog.py" line="73"/>
        <source>eo-ssl — self-supervised land cover from Sentinel-1/2</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="54"/>
        <source>Data</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="54"/>
        <source>Training</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="54"/>
        <source>Output</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="63"/>
        <source>Run</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="64"/>
        <source>Cancel job</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="81"/>
        <source>Sentinel-1 scenes (optional; VV/VH)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="111"/>
        <source>Area of interest</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="113"/>
        <source>Polygon layer</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="114"/>
        <source>Current map extent</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="115"/>
        <source>Whole Sentinel-2 footprint</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="118"/>
        <source>Selected features only</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="128"/>
        <source>Period of interest</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="130"/>
        <source>Only scenes from</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="138"/>
        <source>to</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="152"/>
        <source>Parcels</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="153"/>
        <source>Class field</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="160"/>
        <source>Steps</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="165"/>
        <source>The chip store is kept in the cache folder ({options}) and reused by the next run on the same inputs.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="167"/>
        <source>Pre-train (self-supervised)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="172"/>
        <source>Fine-tune on the parcels</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="177"/>
        <source>Predict land cover</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="178"/>
        <source>Label the parcels from the map</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="186"/>
        <source>Self-supervised pre-training</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="204"/>
        <source>no limit</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="209"/>
        <source>Method</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="210"/>
        <source>RS-BYOL variant</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="212"/>
        <source>Encoder</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="213"/>
        <source>Epochs</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="214"/>
        <source>Maximum steps (each training)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="215"/>
        <source>Batch size</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="216"/>
        <source>Crop (pixels)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="219"/>
        <source>Fine-tuning and prediction</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="249"/>
        <source>Fine-tune epochs</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="250"/>
        <source>Label fraction</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="251"/>
        <source>Prediction tile (pixels)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="254"/>
        <source>A fine-tuned model package (a folder with model.json) to predict with when &apos;Fine-tune&apos; is off</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="257"/>
        <source>…or predict with this model</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../options_page.py" line="103"/>
        <source>Device</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="268"/>
        <source>auto (GPU when there is one)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../options_page.py" line="96"/>
        <source>CPU</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="270"/>
        <source>checking the backend environment…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../options_page.py" line="84"/>
        <source>Create the backend environment, or choose an existing Python</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="276"/>
        <source>Backend…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="277"/>
        <source>Backend diagnostics: which Python, torch and device</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="297"/>
        <source>Output folder</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="298"/>
        <source>Each step writes into the output folder: &lt;code&gt;pretrained/&lt;/code&gt;, &lt;code&gt;finetuned/&lt;/code&gt; (model packages), &lt;code&gt;report/&lt;/code&gt;, &lt;code&gt;landcover.tif&lt;/code&gt; (+ &lt;code&gt;.qml&lt;/code&gt;), &lt;code&gt;confidence.tif&lt;/code&gt;, &lt;code&gt;parcels_labelled.gpkg&lt;/code&gt;. The chip store goes to the cache folder ({options}) and is reused while the layers, area and period do not change. Existing outputs are replaced; a pre-training resumes from its checkpoint when &apos;Resume&apos; is ticked.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="307"/>
        <source>Resume the pre-training from its checkpoint</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="314"/>
        <source>Ready.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog.py" line="110"/>
        <source>{layer} — {n} band(s): {bands}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog.py" line="154"/>
        <source>auto: &apos;single&apos; (a Sentinel-2 band against a Sentinel-1 polarisation), as Sentinel-1 layers are checked.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog.py" line="155"/>
        <source>auto: &apos;s2-only&apos; (two Sentinel-2 band draws), as no Sentinel-1 layer is checked.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog.py" line="165"/>
        <source>The RS-BYOL variant &apos;{variant}&apos; pairs Sentinel-2 with Sentinel-1, and no Sentinel-1 layer is checked on the Data tab: check one, or choose the variant &apos;auto&apos; or &apos;s2-only&apos;.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog.py" line="180"/>
        <source>The backend check failed: {error}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog.py" line="218"/>
        <source>Click &apos;{setup}&apos; to create the backend environment or choose an existing Python.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog.py" line="225"/>
        <source>1 GPU: {name}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog.py" line="227"/>
        <source>{n} GPUs (data-parallel)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog.py" line="304"/>
        <source>There is no map canvas to take the extent from.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog.py" line="340"/>
        <source>The chip store is prepared again ({why}).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_plan.py" line="118"/>
        <source>Choose an output folder.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_plan.py" line="122"/>
        <source>Choose the class field of the parcels.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_plan.py" line="138"/>
        <source>Prepare data</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_plan.py" line="144"/>
        <source>Pre-train ({method})</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_plan.py" line="147"/>
        <source>Pre-train ({method} {variant})</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_plan.py" line="130"/>
        <source>Tick &apos;Fine-tune&apos; or choose a model package to predict with.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_plan.py" line="169"/>
        <source>Label parcels</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog.py" line="385"/>
        <source>Cannot start:</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog.py" line="399"/>
        <source>Output folder: {path}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog.py" line="401"/>
        <source>Prepare data: reusing the chip store {path} (prepared {when} from the same layers, area and period).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog.py" line="432"/>
        <source>Step {k}/{n}: {title}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog.py" line="436"/>
        <source>starting…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog.py" line="457"/>
        <source>Report:</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../jobs.py" line="78"/>
        <source>Cancel requested: the backend stops at its next safe point (a checkpoint is kept).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../jobs.py" line="85"/>
        <source>Cancelled.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../jobs.py" line="87"/>
        <source>All steps finished.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../jobs.py" line="91"/>
        <source>The algorithm {alg} is not registered (is the eo-ssl provider on?).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../jobs.py" line="124"/>
        <source>wrote {kind}: {path}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../jobs.py" line="126"/>
        <source>backend: {command}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../jobs.py" line="144"/>
        <source>Cancelled: the backend stopped; finished outputs and checkpoints are kept.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../jobs.py" line="145"/>
        <source>{step} failed (see the log).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../jobs.py" line="173"/>
        <source>added to the project: {layer}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../loss_plot.py" line="33"/>
        <source>Training loss reported by the backend</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../loss_plot.py" line="83"/>
        <source>The training loss
appears here while a model trains.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../loss_plot.py" line="123"/>
        <source>step {step}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../loss_plot.py" line="125"/>
        <source>loss (log scale)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../loss_plot.py" line="125"/>
        <source>loss</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../parcel_labelling/panel.py" line="48"/>
        <source>eo-ssl parcel labelling</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../parcel_labelling/panel.py" line="64"/>
        <source>Parcel layer</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../parcel_labelling/panel.py" line="67"/>
        <source>Classes from…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../parcel_labelling/panel.py" line="68"/>
        <source>A model package (model.json), a dataset.json, a JSON class list, a map&apos;s .qml or a label-parcels output (.gpkg)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../parcel_labelling/panel.py" line="72"/>
        <source>no classes yet</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../parcel_labelling/panel.py" line="81"/>
        <source>Next uncertain parcel (N)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../parcel_labelling/panel.py" line="88"/>
        <source>Label with clicks</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../parcel_labelling/panel.py" line="90"/>
        <source>Click a parcel to give it the current class; keys 1..9 choose the class, N goes to the next uncertain parcel, Ctrl+Z undoes</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../parcel_labelling/panel.py" line="93"/>
        <source>Undo</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../parcel_labelling/panel.py" line="95"/>
        <source>Save edits</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../parcel_labelling/panel.py" line="111"/>
        <source>Class scheme</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../parcel_labelling/panel.py" line="111"/>
        <source>Class schemes (*.json *.qml *.gpkg);;All (*)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../parcel_labelling/panel.py" line="120"/>
        <source>Cannot read classes from {path}: {error}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../parcel_labelling/panel.py" line="123"/>
        <source>No classes in {path}.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../parcel_labelling/panel.py" line="136"/>
        <source>{n} classes from {source}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../parcel_labelling/panel.py" line="136"/>
        <source>{n} classes</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../parcel_labelling/panel.py" line="146"/>
        <source>the label-parcels output</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../parcel_labelling/panel.py" line="214"/>
        <source>Choose a polygon layer and a class scheme.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../parcel_labelling/panel.py" line="217"/>
        <source>Current class: &lt;b&gt;{name}&lt;/b&gt; (key {key}).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../parcel_labelling/panel.py" line="220"/>
        <source>{n} uncertain parcel(s) left.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../parcel_labelling/panel.py" line="260"/>
        <source>No uncertain parcel left.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../parcel_labelling/panel.py" line="282"/>
        <source>Saving failed: {errors}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../messages.py" line="18"/>
        <source>Choose an output in a folder you can write to (and not one of the inputs).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../messages.py" line="20"/>
        <source>The checkpoint cannot be used: untick &apos;Resume&apos; (and tick &apos;Replace&apos;) to start afresh.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../messages.py" line="22"/>
        <source>Choose a folder written by &apos;1 Prepare data&apos; (it holds manifest.json) as the chip store.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../messages.py" line="24"/>
        <source>Choose a model package folder written by &apos;2 Pre-train&apos; or &apos;3 Fine-tune&apos; (it holds model.json and weights.safetensors).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../messages.py" line="27"/>
        <source>This step needs labelled parcels: give the parcels and their class field to &apos;1 Prepare data&apos; (in the eo-ssl dialog: the Data tab, &apos;Labelled parcels&apos;), with at least two classes inside the area of interest.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../messages.py" line="31"/>
        <source>Choose an area of interest the Sentinel-2 scenes cover (a polygon layer, only its selected features, or an extent), or check the scenes of that place.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../messages.py" line="34"/>
        <source>Choose a period of interest (or a date) that has scenes: the scenes&apos; dates are in their layer names.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../messages.py" line="37"/>
        <source>Use a smaller crop or tile size, or a larger area of interest.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../messages.py" line="39"/>
        <source>Start from a model package with the same encoder and bands, or leave the model package to start from empty (a random start).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../messages.py" line="45"/>
        <source>Tick &apos;Replace&apos; (the algorithm&apos;s overwrite option) or choose another output.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../messages.py" line="59"/>
        <source>Untick &apos;Resume&apos; to start afresh, or choose the output folder of the interrupted run.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../messages.py" line="61"/>
        <source>&apos;Resume&apos; continues an interrupted run only with its own settings: set them back as they were, or untick &apos;Resume&apos; to start afresh, or choose a new output folder.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../messages.py" line="66"/>
        <source>The chip store has no Sentinel-1 data: choose the RS-BYOL variant &apos;auto&apos; or &apos;s2-only&apos; (or another method with Sentinel-2 input bands), or prepare the data again with Sentinel-1 layers.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../messages.py" line="69"/>
        <source>The chip store lacks a sensor this step needs: prepare it again with those layers, or ask only for the sensors it has (e.g. input bands &apos;s2&apos;).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../messages.py" line="78"/>
        <source>The chip store was written by a newer eo-ssl: update the plugin, or prepare the data again.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../messages.py" line="80"/>
        <source>Choose the task that fits the chip store (segmentation: scenes prepared with parcels; classification: chip folders), or prepare the data for that task.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../messages.py" line="88"/>
        <source>The model package was written by a newer eo-ssl: update the plugin.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../messages.py" line="90"/>
        <source>Predicting needs a fine-tuned model package (from &apos;3 Fine-tune&apos;), not a pre-trained encoder.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../messages.py" line="92"/>
        <source>The model reads bands the inputs do not have (listed above): give the Sentinel-2 (and Sentinel-1) layers of the kind it was trained on.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../messages.py" line="95"/>
        <source>Set Devices to &apos;auto&apos; or &apos;cpu&apos; (the default device is in {options}), or create the backend environment with the CUDA build of PyTorch: {setup}.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../messages.py" line="98"/>
        <source>Ask for fewer GPUs in Devices (Raster &gt; eo-ssl &gt; Backend diagnostics shows how many there are).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../messages.py" line="107"/>
        <source>Evaluating needs validation parcels: prepare the data with a validation fraction above 0 (an advanced parameter of &apos;1 Prepare data&apos;).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../messages.py" line="134"/>
        <source>Choose a smaller area of interest (or a coarser grid resolution, an advanced parameter).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../messages.py" line="136"/>
        <source>A file or folder given to this step does not exist (any more): check the inputs (a layer whose file moved shows a warning sign in the Layers panel).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../messages.py" line="139"/>
        <source>A raster or vector cannot be read: open it in QGIS to check it, or give another copy.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../messages.py" line="143"/>
        <source>Choose an encoder from the list (resnet18, resnet34, resnet50) or another timm model name.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../messages.py" line="147"/>
        <source>A value is not accepted (see above). The &apos;Further backend options&apos; (advanced parameters) go to the backend as they are: check them too.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../messages.py" line="155"/>
        <source>&apos;Resume&apos;</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../messages.py" line="156"/>
        <source>&apos;Replace&apos;</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../messages.py" line="157"/>
        <source>the output</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../messages.py" line="158"/>
        <source>the chip store</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../messages.py" line="159"/>
        <source>the model package to start from</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../messages.py" line="160"/>
        <source>the model package</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../messages.py" line="161"/>
        <source>Devices</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../messages.py" line="162"/>
        <source>the date</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../messages.py" line="163"/>
        <source>the period of interest</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../messages.py" line="165"/>
        <source>the area of interest</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../messages.py" line="166"/>
        <source>the crop size</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../messages.py" line="167"/>
        <source>the tile size</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../messages.py" line="168"/>
        <source>the batch size</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../messages.py" line="169"/>
        <source>the fraction of the labels</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../messages.py" line="170"/>
        <source>the label fractions</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../messages.py" line="171"/>
        <source>the encoder</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../messages.py" line="172"/>
        <source>the RS-BYOL variant</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../messages.py" line="173"/>
        <source>the Sentinel-2 scenes</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../messages.py" line="174"/>
        <source>the Sentinel-1 scenes</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../messages.py" line="175"/>
        <source>the parcels</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../messages.py" line="176"/>
        <source>the class field</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../messages.py" line="201"/>
        <source>This eo-ssl backend has no &apos;{command}&apos; command (it is older than the plugin, or that part of the backend is not installed).
Update the backend (reinstall the plugin, or pull the checkout) and check Raster &gt; eo-ssl &gt; Backend diagnostics.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../messages.py" line="205"/>
        <source>Cancelled: the backend was stopped. Whatever it had finished is kept (a training run leaves its last checkpoint: run it again with &apos;Resume&apos; to continue).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../messages.py" line="208"/>
        <source>eo-ssl {command} failed [{code}]: {message}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../messages.py" line="215"/>
        <source>End of the backend&apos;s error output:</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../names.py" line="18"/>
        <source>Self-supervised land cover…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../names.py" line="19"/>
        <source>Parcel labelling tool</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../names.py" line="21"/>
        <source>Set up the backend…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../names.py" line="22"/>
        <source>Backend diagnostics</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../names.py" line="23"/>
        <source>Open the example model in the Model Designer</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../names.py" line="24"/>
        <source>Settings…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../names.py" line="28"/>
        <source>Create the backend environment</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../names.py" line="29"/>
        <source>Use an existing Python</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../options_page.py" line="67"/>
        <source>Backend</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../options_page.py" line="73"/>
        <source>The Python that runs the backend (training, prediction). Empty: the environment variable EO_SSL_PYTHON, else the environment eo-ssl created in your profile.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../options_page.py" line="75"/>
        <source>Backend Python</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../options_page.py" line="76"/>
        <source>Not checked yet.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../options_page.py" line="80"/>
        <source>Check</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../options_page.py" line="81"/>
        <source>Start the backend Python and report its PyTorch and device (seconds)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../options_page.py" line="92"/>
        <source>Runs</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../options_page.py" line="96"/>
        <source>auto (the GPU when there is one, else the CPU)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../options_page.py" line="96"/>
        <source>1 GPU</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../options_page.py" line="96"/>
        <source>2 GPUs (data-parallel)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../options_page.py" line="96"/>
        <source>4 GPUs (data-parallel)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../options_page.py" line="101"/>
        <source>The default of every run (the Devices parameter &apos;auto&apos; of the algorithms and the dialog&apos;s device). Also accepted: cpu:N for N CPU processes, or a number of GPUs.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../options_page.py" line="108"/>
        <source>Where eo-ssl keeps what it can rebuild: the chip stores the dialog prepares, reused while their layers, area and period do not change. They can be large: put the folder on a disk with room.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../options_page.py" line="111"/>
        <source>Cache folder</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../options_page.py" line="114"/>
        <source>Empty the cache…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../options_page.py" line="128"/>
        <source>none found: use &apos;{setup}&apos;</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../options_page.py" line="129"/>
        <source>automatic: {path}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../options_page.py" line="150"/>
        <source>{size} of chip stores in {path}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../options_page.py" line="162"/>
        <source>Checking (the backend Python imports PyTorch: a few seconds)…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../options_page.py" line="176"/>
        <source>Ready: {summary}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../options_page.py" line="179"/>
        <source>Not usable: {problem}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../options_page.py" line="185"/>
        <source>Empty the eo-ssl cache</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../options_page.py" line="185"/>
        <source>Delete the chip stores in {path}? The dialog prepares them again when it needs them.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../options_page.py" line="191"/>
        <source>{size} freed.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../plugin.py" line="64"/>
        <source>eo-ssl: pre-train on Sentinel-1/2, fine-tune, predict and label parcels</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../plugin.py" line="67"/>
        <source>eo-ssl: label parcels by clicking them (keys 1..9 choose the class, N = next uncertain parcel)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../plugin.py" line="70"/>
        <source>eo-ssl: create the backend environment, or choose an existing Python</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../plugin.py" line="73"/>
        <source>eo-ssl: which Python, torch and device the training backend uses</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../plugin.py" line="76"/>
        <source>eo-ssl: open a copy of &apos;Predict land cover and label parcels&apos; to adapt it</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../plugin.py" line="79"/>
        <source>eo-ssl: backend Python, device and cache folder (Settings &gt; Options &gt; eo-ssl)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../plugin.py" line="173"/>
        <source>The backend environment is not set up yet: the eo-ssl tools need it to train and map.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../plugin.py" line="197"/>
        <source>The eo-ssl dialog could not open: {error}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../plugin.py" line="257"/>
        <source>The Model Designer needs the Processing plugin: enable it in Plugins &gt; Manage and Install Plugins.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../setup_panel.py" line="63"/>
        <source>eo-ssl: set up the backend</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../setup_panel.py" line="104"/>
        <source>Location</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../setup_panel.py" line="107"/>
        <source>The Python (3.11 or 3.12) the environment is made from; it is never changed.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../setup_panel.py" line="109"/>
        <source>Made from</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../setup_panel.py" line="191"/>
        <source>looking for Python and the GPU…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../setup_panel.py" line="112"/>
        <source>PyTorch</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../setup_panel.py" line="114"/>
        <source>These commands will run, in this order (no shell; about 2–6 GB are downloaded, most of it PyTorch):</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../setup_panel.py" line="128"/>
        <source>Cancel</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../setup_panel.py" line="131"/>
        <source>Copy log</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../setup_panel.py" line="149"/>
        <source>The output of the commands appears here.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../setup_panel.py" line="156"/>
        <source>Choose the Python interpreter of an environment that has the backend&apos;s packages: a virtual environment or a conda environment with Python 3.11 or newer where you ran&lt;br&gt;&lt;code&gt;{cmd}&lt;/code&gt;&lt;br&gt;(the two files are in the plugin folder {root}). It is checked before it is used: the check starts it, imports PyTorch and looks for the GPU.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../setup_panel.py" line="169"/>
        <source>Check and use this Python</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../setup_panel.py" line="200"/>
        <source>eo-ssl: looking for Python and the GPU</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../setup_panel.py" line="207"/>
        <source>The search failed: {error}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../setup_panel.py" line="223"/>
        <source>No Python 3.11 or 3.12 with the venv module was found ({found}). Install one (python.org, or your package manager: e.g. sudo apt install python3 python3-venv) and choose it above, or use an existing Python with the backend&apos;s packages (second tab).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../setup_panel.py" line="223"/>
        <source>none on the PATH</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../setup_panel.py" line="230"/>
        <source>CPU build</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../setup_panel.py" line="230"/>
        <source>CUDA build {tag}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../setup_panel.py" line="232"/>
        <source>{build}, for: {gpu}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../setup_panel.py" line="254"/>
        <source>Starting…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../setup_panel.py" line="269"/>
        <source>eo-ssl: creating the backend environment</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../setup_panel.py" line="276"/>
        <source>Cancelling: stopping the running command…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../setup_panel.py" line="285"/>
        <source>Step {k} of {n}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../setup_panel.py" line="312"/>
        <source>Done: {message}. Checking the new environment…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../setup_panel.py" line="313"/>
        <source>Created. Checking the new environment (it imports PyTorch)…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../setup_panel.py" line="318"/>
        <source>Cancelled. What was installed so far stays in {venv}; &apos;{create}&apos; continues from there.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../setup_panel.py" line="321"/>
        <source>Failed: {message}. The log above says why (Copy log puts it on the clipboard); &apos;{create}&apos; tries again and keeps what was installed.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../setup_panel.py" line="353"/>
        <source>Choose a Python interpreter first.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../setup_panel.py" line="355"/>
        <source>Checking {python} (it imports PyTorch: a few seconds)…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../setup_panel.py" line="376"/>
        <source>Ready: {summary}. This is now the backend Python (see {options}).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../setup_panel.py" line="383"/>
        <source>Not usable: {problem}. {hint}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/backend_run.py" line="128"/>
        <source>Warning [{code}]: {message}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/backend_run.py" line="131"/>
        <source>Wrote {kind}: {path}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/backend_run.py" line="137"/>
        <source>Finished in {seconds} s</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/evaluate.py" line="178"/>
        <source>Report: {path}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../setup_panel.py" line="79"/>
        <source>&lt;b&gt;eo-ssl runs its training and mapping in its own Python environment&lt;/b&gt; (PyTorch, timm, Lightning, rasterio), outside QGIS, so that QGIS never loads PyTorch. Create that environment here (the commands are shown before anything runs), or use a Python that already has the backend&apos;s packages. This panel stays at {menu}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../messages.py" line="48"/>
        <source>That output holds files eo-ssl did not write, which it never replaces (not even with &apos;Replace&apos;): choose an empty or new output folder or file.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../messages.py" line="51"/>
        <source>Another run is writing the same output: wait for it to end (QGIS&apos;s task manager, bottom right, shows it), or choose another output.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../messages.py" line="54"/>
        <source>Free some disk space, or choose an output on a disk with room (the dialog&apos;s chip stores go to the cache folder of {options}).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../messages.py" line="75"/>
        <source>The chip store is damaged (cut short): prepare it again. A store of the dialog is in the cache folder: {options} &gt; 'Empty the cache…', then Run.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../messages.py" line="112"/>
        <source>The scenes have no valid pixel in that area and period: choose another area, period or scenes.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../messages.py" line="114"/>
        <source>Repair the feature named above (Processing Toolbox &gt; Vector geometry &gt; Fix geometries) or leave it out of the selection.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../messages.py" line="117"/>
        <source>Give a polygon layer: parcels and areas of interest are polygons.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../messages.py" line="119"/>
        <source>Give the land-cover map written by &apos;5 Predict land cover&apos; (class ids), not the confidence raster or a Sentinel scene.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/embed.py" line="40"/>
        <source>5b Per-pixel embedding</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/embed.py" line="42"/>
        <source>&lt;p&gt;Writes the per-pixel features of a pre-trained encoder (a package of Pre-train, or an imported one) as a multi-band raster on the analysis grid: the encoder&apos;s feature pyramid at full resolution, reduced to its first principal components. Feed it, alone or with the bands, to any classifier (QGIS&apos;s, SCP, dzetsaka), as with published satellite-embedding datasets.&lt;/p&gt;&lt;p&gt;Several dates: the embedding of their per-band median composite. 8-bit or 16-bit output is scaled per band (the scale and offset travel with the file).&lt;/p&gt;</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/embed.py" line="90"/>
        <source>The backend finished but wrote no embedding ({out}).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/finetune.py" line="72"/>
        <source>&lt;p&gt;Fine-tunes (or linear-probes, with &lt;i&gt;Freeze the encoder&lt;/i&gt;) a model on the labelled parcels of a chip store: &lt;b&gt;segmentation&lt;/b&gt; (U-Net or DeepLabV3+ over the encoder; pixels outside parcels are ignored) or &lt;b&gt;classification&lt;/b&gt; (chip folders or parcel crops). Start from a pre-trained model package, or from a random initialisation to measure what the pre-training bought.&lt;/p&gt;&lt;p&gt;With a handful of labelled polygons choose the &lt;b&gt;pixel&lt;/b&gt; model: a per-pixel classifier on the spectra of every date (as SCP or dzetsaka), with the pre-trained encoder&apos;s embedding added when it helps on held-out parcels; &lt;i&gt;auto&lt;/i&gt; picks the classifier by cross-validation grouped by parcel.&lt;/p&gt;&lt;p&gt;Output: a model package with classes (names and colours), bands, normalisation and validation metrics: the input of &lt;i&gt;Predict land cover&lt;/i&gt;.&lt;/p&gt;</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/evaluate.py" line="70"/>
        <source>&lt;p&gt;&lt;b&gt;compare&lt;/b&gt; (default): which path gives the best map with your labels, and what the pre-training was worth: the classic per-pixel classifiers on the spectra, the pixel classifier with the package&apos;s embedding, and the U-Net from the package and from random initialisation, all trained on the same parcels and scored on held-out parcels, at several label budgets. The report opens with one sentence that says which to use.&lt;/p&gt;&lt;p&gt;Or one protocol for the package and (optionally) a random initialisation: linear probe on frozen features, kNN, or full fine-tune, at several label fractions. Metrics: overall accuracy, macro F1, per-class IoU, mIoU, confusion matrix.&lt;/p&gt;&lt;p&gt;The HTML report opens in the Processing Results Viewer.&lt;/p&gt;</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/evaluate.py" line="159"/>
        <source>The {protocol} protocol evaluates a model package: choose one.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="223"/>
        <source>Pixel classifier: spectra of every date + the pre-trained embedding (best with few polygons)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="225"/>
        <source>U-Net over the pre-trained encoder</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="226"/>
        <source>With a handful of labelled polygons a per-pixel classifier generalises better than a U-Net, which memorises the polygons. Tick &apos;Evaluate&apos; to compare both on parcels none of them trained on.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="232"/>
        <source>Model</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_plan.py" line="155"/>
        <source>Fine-tune (pixel classifier)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_plan.py" line="158"/>
        <source>Fine-tune (U-Net)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_plan.py" line="181"/>
        <source>Evaluate: which path gives the best map</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="199"/>
        <source>the method&apos;s: {encoders}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/prepare.py" line="83"/>
        <source>Give Sentinel-2 scenes (layers or a folder), feature rasters, or a chip folder.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/similar.py" line="53"/>
        <source>5c Find similar (feature raster)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/similar.py" line="55"/>
        <source>&lt;p&gt;Finds the pixels that look like a few examples in a &lt;b&gt;feature raster&lt;/b&gt; (a per-pixel embedding: AlphaEarth Foundations&apos; Satellite Embedding, TESSERA, eo-ssl&apos;s &lt;i&gt;Per-pixel embedding&lt;/i&gt;, any multi-band raster): the cosine similarity (-1..1) of every pixel to the mean embedding of the example polygons or points, one band per class when a class field is given. Styled from 2nd to 98th percentile.&lt;/p&gt;&lt;p&gt;The map tool &lt;i&gt;Find similar&lt;/i&gt; (eo-ssl toolbar) runs it on a clicked pixel or a drawn polygon.&lt;/p&gt;</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/similar.py" line="91"/>
        <source>Give at least one feature raster layer.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/similar.py" line="94"/>
        <source>Give the example polygons or points.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/similar.py" line="117"/>
        <source>The backend finished but wrote no similarity raster ({out}).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../similar_tool.py" line="170"/>
        <source>Similarity</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../names.py" line="20"/>
        <source>Find similar (feature raster)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../plugin.py" line="82"/>
        <source>eo-ssl: click a pixel or draw a polygon on a feature raster (an embedding) and map the similar pixels</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../similar_tool.py" line="65"/>
        <source>Click once for a pixel, or three times or more for a polygon.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../similar_tool.py" line="116"/>
        <source>Find similar: click a pixel, or click the vertices of a polygon, then right-click to run (Esc clears).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../similar_tool.py" line="146"/>
        <source>Find similar needs a feature raster layer (an embedding: AlphaEarth, TESSERA, eo-ssl&apos;s Per-pixel embedding): add one to the project and select it.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../similar_tool.py" line="159"/>
        <source>Find similar: running on {layer}…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../similar_tool.py" line="167"/>
        <source>Find similar failed: {log}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/model_inputs.py" line="19"/>
        <source>Pick the folder a Fine-tune run wrote (it holds model.json and weights.safetensors; the dialog writes it as &lt;output folder&gt;/finetuned).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/model_inputs.py" line="22"/>
        <source>Choose the model package. {pick}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/model_inputs.py" line="24"/>
        <source>The model folder {model} does not exist. {pick}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/model_inputs.py" line="27"/>
        <source>{model} is not an eo-ssl model package (no model.json in it). {pick}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/label_parcels.py" line="49"/>
        <source>Labelled parcels ({name})</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/label_parcels.py" line="49"/>
        <source>Labelled parcels</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="76"/>
        <source>Sentinel-2 scenes (check the ones to use)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="85"/>
        <source>Show all raster layers</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="86"/>
        <source>Not only those that look like Sentinel-1 or -2. Sentinel-1 layers are recognised by their VV/VH bands or a name with S1, GRD, VV or VH; the Sentinel-2 list leaves them out.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="143"/>
        <source>Labelled parcels (a few per class are enough)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="149"/>
        <source>The attribute holding the class of each parcel. Chosen for you: a text field with few distinct values (never the feature id).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="162"/>
        <source>Prepare data (reused while the inputs do not change)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="169"/>
        <source>Learns an encoder from the unlabelled scenes (minutes to hours); the pixel classifier then also uses its embedding where it helps on held-out parcels. Off by default: the first map needs only the parcels.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="173"/>
        <source>Compare report (evaluate)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="174"/>
        <source>Which path gives the best map, on parcels none of them trained on: the classic classifiers, random init and the pre-trained encoder. Runs after the map.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="205"/>
        <source>the method&apos;s</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="206"/>
        <source>The method&apos;s own batch size: {sizes}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="233"/>
        <source>Quick first map (in seconds)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="235"/>
        <source>The pixel classifier chooses between logistic regression and the vote on at most 3000 training pixels: a first map in seconds. Untick it for the map you keep (8 cross-validated candidates on up to 20,000 pixels: minutes).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="240"/>
        <source>U-Net only: the pixel classifier is fitted at once, without epochs.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="246"/>
        <source>the model&apos;s</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog.py" line="406"/>
        <source>Nothing to run: the chip store is ready ({path}). Tick a step on the Training tab (Fine-tune, Predict…) to go on.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_plan.py" line="64"/>
        <source>Pick the folder a Fine-tune run wrote (it holds model.json and weights.safetensors, e.g. &lt;output folder&gt;/finetuned), or tick &apos;Fine-tune&apos; to train one in this run.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_plan.py" line="67"/>
        <source>The model folder {path} does not exist. {pick}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_plan.py" line="69"/>
        <source>{path} is a file, not a model package folder. {pick}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_plan.py" line="71"/>
        <source>{path} is not an eo-ssl model package (no model.json in it). {pick}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_plan.py" line="155"/>
        <source>Fine-tune (pixel classifier, quick)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../parcel_labelling/panel.py" line="277"/>
        <source>Nothing to save: no parcel was labelled since the last save.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../parcel_labelling/panel.py" line="286"/>
        <source>Saved: {n} parcel(s) written to {file}.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../plugin.py" line="172"/>
        <source>The backend environment is not complete (PyTorch is missing: was its creation cancelled?). &apos;{setup}&apos; continues it.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../venv_setup.py" line="297"/>
        <source>creating the virtual environment</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../venv_setup.py" line="299"/>
        <source>upgrading pip</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../venv_setup.py" line="301"/>
        <source>installing PyTorch (the largest download)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../venv_setup.py" line="302"/>
        <source>installing the backend&apos;s packages</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/base.py" line="178"/>
        <source> or </source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/base.py" line="179"/>
        <source>The further backend options repeat {option}, which the parameter {parameter} sets: set it there and remove {typed} from the further backend options.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../backend_spec.py" line="85"/>
        <source>{cpu} on the CPU, {cuda} on a GPU</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_plan.py" line="120"/>
        <source>Check at least one Sentinel-2 layer or feature raster.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="93"/>
        <source>Feature rasters (optional; an embedding: AlphaEarth, TESSERA, eo-ssl Embed)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="96"/>
        <source>Per-pixel features beside the scenes, or alone: prepared onto the grid as Sentinel-1 (prepare --features) and read again for the map (predict --features).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="101"/>
        <source>Encoding</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../algorithms/export_dataset.py" line="113"/>
        <source>Give either a chip store or Sentinel-2 scenes / feature rasters (one of the two).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../dialog_tabs.py" line="247"/>
        <source>Empty (the model&apos;s): {tile} for a segmentation model, a classifier&apos;s chip size.</source>
        <translation type="unfinished"></translation>
    </message>
</context>
</TS>
