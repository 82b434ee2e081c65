"""Weights into a network, always with a shape check: :func:`load_matching` (a package's encoder or backbone into
a network's own, by name: fine-tuning, evaluation, prediction) and published weight files (``import-weights``, the
Presto file): read them without running code, find the encoder's tensors, check them against timm.

Published encoders come as ``.pth``/``.pt`` files (``torch.save`` pickles) or safetensors, either as a bare state dict
(torchgeo's rehosted SSL4EO-S12 ResNets: timm's key names, no classifier) or inside a training checkpoint: MoCo's
``{"state_dict": {"module.encoder_q.conv1.weight": ...}, "optimizer": ...}``, DINO's ``{"teacher": {"backbone.conv1
.weight": ...}, "student": {"module.backbone...."}, "args": Namespace(...)}``, Lightning's ``{"state_dict":
{"model.backbone....": ...}}``.

- Reading: safetensors with ``safetensors.torch.load_file``; anything else with ``torch.load(weights_only=True)``
  only, which rebuilds tensors, dicts, lists and numbers and refuses every other Python object (a pickle that would
  call ``os.system`` or ``open`` is refused before anything runs; the error names the objects it holds).
  ``argparse.Namespace`` is the one class allowed on top (DINO checkpoints store their arguments in one; rebuilding
  it sets attributes and calls nothing else).
- Finding: the file is flattened to dotted names (``teacher.backbone.conv1.weight``); the prefix under which the most
  of the encoder's own timm key names appear is the encoder (``teacher.backbone.``). torchvision's ResNet keys are
  timm's (``conv1``, ``bn1``, ``layer1.0.downsample.0`` ...) except the classifier (``fc``), so one rule serves both.
  Two prefixes that fit equally well (MoCo's query and key encoders, DINO's student and teacher) are resolved the way
  the methods' authors transfer them (``encoder_q``, ``teacher``), otherwise the user chooses with ``--prefix``.
- Checking: every tensor of a real timm model of the encoder and band count must be in the file with the same shape
  (``num_batches_tracked`` counters may be absent), and no tensor of the encoder's own modules may be left over (a
  ResNet-34 file is not a ResNet-18 even though it holds every ResNet-18 tensor). Tensors outside the encoder's
  modules (the classifier ``fc``, projection heads, optimiser state) are not used and are listed.
"""

from __future__ import annotations

import argparse
import pickle
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from backend.errors import EoSslError
from backend.models.package import weights_under

#: classes ``torch.load(weights_only=True)`` may rebuild beyond tensors and containers (see the module docstring)
SAFE_GLOBALS: list[Any] = [argparse.Namespace]
#: how ties between equally good prefixes are broken: the encoder the method's authors transfer
PREFERRED = ("encoder_q", "teacher")
#: how many differing keys an error lists
SHOW = 8


@dataclass
class LoadReport:
    """What :func:`load_matching` did: tensors loaded, given tensors the network does not use, the network's tensors
    that were not given (left at their initialisation)."""

    loaded: int = 0
    unused: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = f"{self.loaded} encoder tensors loaded"
        if self.unused:
            text += f"; {len(self.unused)} not used by this decoder ({', '.join(self.unused[:4])}" + (
                " ...)" if len(self.unused) > 4 else ")")
        return text


def load_matching(module: torch.nn.Module, state: Mapping[str, torch.Tensor], *, needs: str,
                  target: Callable[[str], str | None] | None = None, what: str = "Encoder weight",
                  hint: str = "The package was made for another encoder or number of input bands.") -> LoadReport:
    """Load the tensors of ``state`` that ``module`` has (``target`` names a key's own name, None: not used; by
    default the key itself), each of the same shape or ``weights_mismatch`` (``what`` KEY has shape ...; ``needs``
    needs ...). The module's other tensors keep their values; the report lists them (``missing``, own names)."""
    own = module.state_dict()
    report = LoadReport()
    new: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        name = target(key) if target is not None else key
        if name is None or name not in own:
            report.unused.append(key)
            continue
        if tuple(own[name].shape) != tuple(value.shape):
            raise EoSslError("weights_mismatch", f"{what} {key} has shape {tuple(value.shape)}; {needs} needs "
                             f"{tuple(own[name].shape)}.", hint)
        new[name] = value
    report.missing = [k for k in own if k not in new]
    own.update(new)
    module.load_state_dict(own, strict=True)
    report.loaded = len(new)
    return report


def load_exactly(module: torch.nn.Module, state: Mapping[str, torch.Tensor], code: str, what: str, hint: str,
                 limit: int = 300) -> None:
    """``module.load_state_dict(state, strict=True)``; a key or shape that does not fit is ``EoSslError(code,
    "WHAT: <torch's message, at most ``limit`` characters>", hint)``."""
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise EoSslError(code, f"{what}: {str(exc)[:limit]}", hint) from exc


def _is_safetensors(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < path.stat().st_size


def read_weights_file(path: str | Path) -> tuple[dict[str, torch.Tensor], str]:
    """All tensors of a ``.pth``/``.pt``/``.ckpt`` (``torch.load(weights_only=True)``) or safetensors file, flattened
    to dotted names, and the format read (``safetensors`` or ``torch``)."""
    path = Path(path)
    if not path.is_file():
        raise EoSslError("input_not_found", f"Weights file {path} does not exist.", "Check the path.")
    if _is_safetensors(path):
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return dict(load_file(str(path))), "safetensors"
        except (SafetensorError, OSError, ValueError) as exc:
            raise EoSslError("corrupt_weights", f"Cannot read safetensors file {path}: {exc}",
                             "The file is damaged or truncated; download it again.") from exc
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        unsafe = _unsafe_globals(path)
        if unsafe or "Unsupported global" in str(exc):
            raise EoSslError("unsafe_weights", f"{path} holds Python objects other than tensors and plain containers"
                             f" ({unsafe or 'see torch.load(weights_only=True)'}); eo-ssl does not unpickle them "
                             "(unpickling can run any code).",
                             "Use the plain state-dict release of the weights (torchgeo rehosts the SSL4EO-S12 ResNets "
                             "as plain state dicts), or, if you trust the file, save its state dict with "
                             "safetensors.torch.save_file and import that.") from exc
        raise _corrupt(path, exc) from exc
    except Exception as exc:  # noqa: BLE001 - a damaged or foreign file fails inside the unpickler in many ways
        raise _corrupt(path, exc) from exc
    flat = flatten(obj)
    if not flat:
        raise EoSslError("corrupt_weights", f"{path} holds no tensors.", "Give the file of the encoder's weights.")
    return flat, "torch"


def _corrupt(path: Path, exc: Exception) -> EoSslError:
    text = str(exc)
    if "WeightsUnpickler error:" in text:  # torch's long notice; the reason is on the next non-empty line
        text = next((line for line in text.split("WeightsUnpickler error:", 1)[1].splitlines() if line.strip()), "")
    first = text.strip().splitlines()[0][:200] if text.strip() else type(exc).__name__
    return EoSslError("corrupt_weights", f"Cannot read {path} as a PyTorch or safetensors file ({first}).",
                      "Give a .pth/.pt state dict or a .safetensors file; download it again if it is truncated.")


def _unsafe_globals(path: Path) -> str:
    """The Python objects a pickle would rebuild that ``weights_only`` refuses (e.g. ``builtins.open``)."""
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # noqa: BLE001 - only used to word the message; a legacy (non-zip) pickle is not scanned
        return ""
    return "it would rebuild " + ", ".join(names[:5]) if names else ""


def flatten(obj: Any, prefix: str = "", depth: int = 0) -> dict[str, torch.Tensor]:
    """Every tensor inside nested dicts (and lists of dicts), by dotted name; other values are skipped."""
    out: dict[str, torch.Tensor] = {}
    if depth > 8:
        return out
    if isinstance(obj, torch.Tensor):
        out[prefix[:-1]] = obj
    elif isinstance(obj, Mapping):
        for key, value in obj.items():
            out.update(flatten(value, f"{prefix}{key}.", depth + 1))
    elif isinstance(obj, argparse.Namespace):
        pass
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            if isinstance(value, (Mapping, torch.Tensor)):
                out.update(flatten(value, f"{prefix}{i}.", depth + 1))
    return out


@dataclass
class EncoderTensors:
    """The encoder's tensors found in a file, by timm name, and what was left aside."""

    state: dict[str, torch.Tensor]
    prefix: str
    unused: list[str] = field(default_factory=list)  # tensors of the file outside the encoder's modules
    other_prefixes: list[str] = field(default_factory=list)  # prefixes that fitted as well and were not chosen

    def describe(self) -> str:
        text = f"{len(self.state)} tensors" + (f" under '{self.prefix}'" if self.prefix else "")
        if self.unused:
            more = " ..." if len(self.unused) > 4 else ""
            text += f"; {len(self.unused)} not used ({', '.join(self.unused[:4])}{more})"
        return text


def _candidates(flat: Mapping[str, torch.Tensor], targets: set[str]) -> Counter[str]:
    """prefix -> how many of the encoder's key names appear under it."""
    counts: Counter[str] = Counter()
    for key in flat:
        parts = key.split(".")
        for i in range(len(parts)):
            if ".".join(parts[i:]) in targets:
                counts[".".join(parts[:i]) + ("." if i else "")] += 1
                break
    return counts


def choose_prefix(flat: Mapping[str, torch.Tensor], targets: set[str], what: str, prefix: str | None = None
                  ) -> tuple[str, list[str]]:
    """The prefix of the encoder's tensors in ``flat`` and the equally good ones not chosen."""
    if prefix is not None:
        prefix = prefix if prefix == "" or prefix.endswith(".") else prefix + "."
        if not any(k.startswith(prefix) and k[len(prefix):] in targets for k in flat):
            raise EoSslError("weights_mismatch", f"No tensor under the prefix '{prefix}' of {what} is named like a "
                             "tensor of the encoder.", "Leave --prefix out to let eo-ssl find the encoder's tensors.")
        return prefix, []
    counts = _candidates(flat, targets)
    if not counts:
        sample = ", ".join(list(flat)[:SHOW])
        raise EoSslError("weights_mismatch", f"No tensor of {what} is named like a tensor of the encoder (the file "
                         f"has {len(flat)} tensors, e.g. {sample}).",
                         "Check --encoder: it must be the architecture the weights were saved from (timm or "
                         "torchvision names, under any prefix such as module., backbone. or encoder_q.).")
    best = max(counts.values())
    tied = sorted(p for p, n in counts.items() if n == best)
    if len(tied) == 1:
        return tied[0], []
    for token in PREFERRED:
        chosen = [p for p in tied if token in p.split(".")]
        if len(chosen) == 1:
            return chosen[0], [p for p in tied if p != chosen[0]]
    raise EoSslError("ambiguous_weights", f"{what} holds {len(tied)} encoders that fit equally well (under "
                     f"{', '.join(repr(p) for p in tied)}).", f"Choose one with --prefix, e.g. --prefix {tied[0]!r}.")


def match_encoder(flat: Mapping[str, torch.Tensor], model: torch.nn.Module, *, what: str, prefix: str | None = None,
                  first_conv: str | None = None, bands: int | None = None) -> EncoderTensors:
    """The tensors of ``flat`` that make ``model``'s state dict, checked name by name and shape by shape.

    ``first_conv``: the stem convolution (timm's ``pretrained_cfg['first_conv']``), whose input channels must be the
    number of ``bands``: a file for another band count is refused with its own error."""
    own = model.state_dict()
    targets = set(own)
    chosen, others = choose_prefix(flat, targets, what, prefix)
    under = weights_under(dict(flat), chosen)
    stem = f"{first_conv}.weight" if first_conv else None
    if stem and stem in under and bands is not None and under[stem].dim() == 4 and under[stem].shape[1] != bands:
        shape = tuple(under[stem].shape)
        raise EoSslError("band_count_mismatch", f"The first convolution of {what} ({stem}, shape {shape}) reads "
                         f"{shape[1]} channels; --bands names {bands}.",
                         f"Name the {shape[1]} bands the encoder was trained on, in its order (SSL4EO-S12 "
                         "multispectral: B01,B02,B03,B04,B05,B06,B07,B08,B8A,B09,B10,B11,B12).")
    modules = {k.split(".")[0] for k in targets}
    missing = [k for k in own if k not in under and not k.endswith("num_batches_tracked")]
    wrong = [f"{k} {tuple(under[k].shape)} (needs {tuple(own[k].shape)})" for k in own
             if k in under and tuple(under[k].shape) != tuple(own[k].shape)]
    extra = [k for k in under if k not in targets and k.split(".")[0] in modules]
    if missing or wrong or extra:
        parts = []
        for label, keys in (("missing", missing), ("of another shape", wrong), ("not in this encoder", extra)):
            if keys:
                parts.append(f"{len(keys)} {label}: {', '.join(keys[:SHOW])}{' ...' if len(keys) > SHOW else ''}")
        raise EoSslError("weights_mismatch", f"{what} does not fit the encoder (tensors under '{chosen}'): "
                         + "; ".join(parts) + ".",
                         "Check --encoder (the architecture the file was saved from) and --bands; --prefix "
                         "chooses another part of the file.")
    state = {}
    for k, target in own.items():
        value = under.get(k, target)
        state[k] = value.to(torch.float32) if value.is_floating_point() else value.to(target.dtype)
    unused = [k for k in under if k not in targets] + [k for k in flat if not k.startswith(chosen)]
    return EncoderTensors({k: v.contiguous() for k, v in state.items()}, chosen, unused, others)
