"""Find the backend's Python and check what it has (backend version, torch, device).

Pure Python: no ``qgis``, no ``torch`` (torch is imported only inside the probed interpreter).

Order of search (docs/DESIGN.md, "Set-up"): the plugin setting, then the environment variable ``EO_SSL_PYTHON``,
then the checkout's own ``.venv`` (made by ``scripts/setup.sh``; development), then the *managed* venv in the user's
QGIS profile (``<profile>/eo_ssl/venv``, which the plugin offers to create: see :mod:`.venv_setup`). There is no
fallback to the interpreter QGIS runs in: that one must never import torch.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .backend_runner import backend_env
from .names import NO_BACKEND_HINT, SETUP_MENU_PATH
from .paths import ROOT

ENV_VAR = "EO_SSL_PYTHON"

#: Run by the backend's Python; prints one JSON object on its last stdout line.
PROBE = r"""
import json, platform, sys
info = {"python": platform.python_version(), "executable": sys.executable, "platform": platform.platform()}
try:
    import backend
    info["backend_version"] = backend.__version__
except Exception as exc:
    info["backend_error"] = f"{type(exc).__name__}: {exc}"
try:
    import torch
    info["torch"] = torch.__version__
    info["cuda_available"] = bool(torch.cuda.is_available())
    info["cuda_version"] = torch.version.cuda
    if info["cuda_available"]:
        info["device"] = "cuda"
        info["device_name"] = torch.cuda.get_device_name(0)
        info["device_count"] = torch.cuda.device_count()
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        info["device"] = "mps"
        info["device_name"] = "Apple MPS"
    else:
        info["device"] = "cpu"
        info["device_name"] = "CPU"
except Exception as exc:
    info["torch_error"] = f"{type(exc).__name__}: {exc}"
print(json.dumps(info))
"""


@dataclass
class Candidate:
    source: str  # "setting", "env", "venv", "managed"
    path: Path
    exists: bool
    note: str = ""  # why an existing file does not count (a managed venv without PyTorch)


@dataclass
class BackendReport:
    ok: bool
    python: str | None
    source: str | None
    info: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    hint: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        """One line for a status bar or a log."""
        if not self.ok:
            return f"backend not usable: {self.error}"
        i = self.info
        return (f"eo-ssl backend {i.get('backend_version')} | Python {i.get('python')} | torch {i.get('torch')} | "
                f"{i.get('device_name')}")


def venv_python(venv_dir: Path | str) -> Path:
    """The interpreter of a virtual environment folder (``bin/python``, ``Scripts/python.exe`` on Windows)."""
    return Path(venv_dir) / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def venv_has_torch(venv_dir: Path | str) -> bool:
    """Whether a virtual environment folder has PyTorch installed (a look at its site-packages, no import): a
    creation cancelled or failed before PyTorch leaves a venv that is not a backend yet."""
    venv_dir = Path(venv_dir)
    patterns = ("Lib/site-packages/torch/__init__.py",) if os.name == "nt" else (
        "lib/python3*/site-packages/torch/__init__.py", "lib64/python3*/site-packages/torch/__init__.py")
    return any(next(venv_dir.glob(p), None) is not None for p in patterns)


def _venv_python(root: Path) -> Path:
    return venv_python(root / ".venv")


def candidates(setting: str | os.PathLike[str] | None = None, root: Path = ROOT,
               environ: dict[str, str] | None = None, managed: Path | str | None = None) -> list[Candidate]:
    """Every place looked at, in order, with whether something is there. ``managed``: the managed venv folder."""
    environ = dict(os.environ if environ is None else environ)
    found: list[Candidate] = []
    places: list[tuple[str, Any]] = [("setting", setting), ("env", environ.get(ENV_VAR)),
                                     ("venv", _venv_python(root))]
    if managed is not None:
        places.append(("managed", venv_python(managed)))
    for source, value in places:
        if value is None or str(value).strip() == "":
            continue
        path = Path(os.path.expanduser(os.fspath(value)))
        exists = path.is_file() and os.access(path, os.X_OK)
        if exists and source == "managed" and not venv_has_torch(managed):
            # a creation that was cancelled or failed: not a backend (the first-run panel is offered again)
            found.append(Candidate(source, path, False, "incomplete: PyTorch is not installed in it"))
            continue
        found.append(Candidate(source, path, exists))
    return found


def find_backend_python(setting: str | os.PathLike[str] | None = None, root: Path = ROOT,
                        environ: dict[str, str] | None = None, managed: Path | str | None = None) -> Candidate | None:
    """The first existing candidate, or ``None`` (never the interpreter QGIS itself runs in)."""
    return next((c for c in candidates(setting, root, environ, managed) if c.exists), None)


def no_backend_hint(root: Path = ROOT) -> str:
    """What to do when there is no usable backend Python: the plugin's own menus; in a checkout, also setup.sh."""
    hint = NO_BACKEND_HINT
    if (root / "scripts" / "setup.sh").is_file():
        hint += f" In a development checkout, `bash scripts/setup.sh` makes {root / '.venv'}."
    return hint


def missing_packages_hint(python: str, root: Path = ROOT) -> str:
    return (f"{python} lacks the backend's packages. Open {SETUP_MENU_PATH} to create the backend environment, or "
            f"install them into that Python: `{python} -m pip install -c {root / 'constraints.txt'} -r "
            f"{root / 'requirements.lock'}`.")


def check_backend(setting: str | os.PathLike[str] | None = None, root: Path = ROOT,
                  environ: dict[str, str] | None = None, timeout_s: float = 120.0,
                  managed: Path | str | None = None, exact: bool = False) -> BackendReport:
    """Find the backend Python and run :data:`PROBE` in it. Never raises for a bad environment: the report says
    what is wrong and what to do. ``exact``: probe ``setting`` itself, not the first candidate that exists (the
    setup panel checks the user's choice before saving it)."""
    if exact:
        path = Path(os.path.expanduser(os.fspath(setting or "")))
        ok = bool(setting) and path.is_file() and os.access(path, os.X_OK)
        found = Candidate("setting", path, ok) if ok else None
        if found is None:
            return BackendReport(ok=False, python=str(setting or ""), source=None,
                                 error=f"{setting or 'nothing'} is not an executable file",
                                 hint="Choose the python (python.exe on Windows) of the environment.")
    else:
        found = find_backend_python(setting, root, environ, managed)
    if found is None:
        looked = ", ".join(f"{c.source}: {c.path}" + (f" ({c.note})" if c.note else "")
                           for c in candidates(setting, root, environ, managed))
        return BackendReport(
            ok=False, python=None, source=None,
            error=f"no backend Python found (looked at {looked or 'nothing set'})",
            hint=no_backend_hint(root),
        )
    python = str(found.path)
    try:
        proc = subprocess.run(
            [python, "-c", PROBE], cwd=root, env=backend_env(root, environ), stdin=subprocess.DEVNULL,
            capture_output=True, text=True, encoding="utf-8", errors="replace", timeout=timeout_s, check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return BackendReport(ok=False, python=python, source=found.source,
                             error=f"could not run {python}: {exc}",
                             hint="Check that this is a working Python 3.11+ interpreter.")
    info: dict[str, Any] = {}
    lines = proc.stdout.strip().splitlines()
    if lines:
        try:
            info = json.loads(lines[-1])
        except json.JSONDecodeError:
            info = {}
    if proc.returncode != 0 or not info:
        tail = proc.stderr.strip().splitlines()[-5:]
        return BackendReport(ok=False, python=python, source=found.source, info=info,
                             error=f"the probe failed (exit code {proc.returncode}): {' | '.join(tail)}",
                             hint="Check that this is a working Python 3.11+ interpreter.")
    problems = [info[k] for k in ("backend_error", "torch_error") if k in info]
    if problems:
        return BackendReport(ok=False, python=python, source=found.source, info=info,
                             error="; ".join(problems), hint=missing_packages_hint(python, root))
    return BackendReport(ok=True, python=python, source=found.source, info=info)


def report_text(report: BackendReport, extra: dict[str, Any] | None = None,
                looked: list[Candidate] | None = None) -> str:
    """The plain-text report the diagnostics panel shows and copies (for a bug report)."""
    i = report.info
    lines = [f"eo-ssl backend: {'OK' if report.ok else 'NOT USABLE'}"]
    if report.error:
        lines.append(f"problem: {report.error}")
    if report.hint:
        lines.append(f"what to do: {report.hint}")
    lines += [
        f"backend python: {report.python or '-'} (from {report.source or '-'})",
        f"python version: {i.get('python', '-')}",
        f"backend version: {i.get('backend_version', '-')}",
        f"torch: {i.get('torch', '-')}",
        f"cuda available: {i.get('cuda_available', '-')} (torch built for CUDA {i.get('cuda_version') or '-'})",
        f"device: {i.get('device', '-')} ({i.get('device_name', '-')})",
    ]
    if i.get("device_count"):
        lines.append(f"devices: {i['device_count']}")
    if i.get("platform"):
        lines.append(f"platform: {i['platform']}")
    if looked:
        lines.append("looked at: " + "; ".join(
            f"{c.source}: {c.path} ({'found' if c.exists else c.note or 'missing'})" for c in looked))
    for key, value in (extra or {}).items():
        lines.append(f"{key}: {value}")
    return "\n".join(lines)


if __name__ == "__main__":  # python -m qgis_plugin.environment: the same report on a terminal
    print(json.dumps(check_backend().to_dict(), indent=2))
