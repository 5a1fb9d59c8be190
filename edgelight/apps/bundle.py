"""`edgelight bundle --app android|ios`: copy exported artifacts, their labels and preprocessing into a demo app.

Each artifact comes with a sidecar next to it (`model.pte` -> `model.pte.json`) holding model, precision,
input_shape [N, C, H, W], mean, std and labels. The bundle copies artifact and sidecar into the app's model
folder and (re)writes `manifest.json` there, which the apps read at start:

    {"schema_version": 1, "app": "android", "models": [
        {"file": "m.pte", "model": "lrunet-4-1x", "runtime": "executorch", "precision": "fp32",
         "input_shape": [1, 3, 32, 32], "mean": [...], "std": [...], "labels": [...], "bytes": 123, "sha256": "..."}]}

Everything is checked before anything is copied, so a bad artifact never leaves a half-written bundle.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from edgelight.artifacts import sidecar_path
from edgelight.errors import UsageError
from edgelight.utils.files import content_digest

MANIFEST_NAME = "manifest.json"

# Where each app reads its bundled models from, relative to the app folder.
APP_ASSET_DIRS = {
    "android": Path("app/src/main/assets/models"),
    "ios": Path("EdgelightDemo/Models"),
}

# A file every checkout of each app has at its root: bundling into the wrong app's folder is refused.
APP_MARKERS = {"android": "settings.gradle.kts", "ios": "project.yml"}



def app_suffixes(app: str) -> dict[str, str]:
    """Artifact suffix -> runtime, for the runtimes whose records say this app carries them."""
    from edgelight.targets import export_targets

    return {s: r.name for r in export_targets() if app in r.apps + r.listed_by for s in r.suffixes}


class BundleError(UsageError):
    """A bundle request that cannot be carried out; the message is one line naming the file and the reason."""


def default_app_dir(app: str) -> Path:
    """The demo app folder of this checkout (android_demo/ or ios_demo/ beside the edgelight package)."""
    _check_app(app)
    return Path(__file__).resolve().parents[2] / f"{app}_demo"


def bundle(artifacts: list[Path], app: str, app_dir: Path | None = None) -> list[Path]:
    """Copy `artifacts` (+ sidecars) into the app and update its manifest; returns the paths written."""
    _check_app(app)
    if not artifacts:
        raise BundleError("nothing to bundle: name at least one artifact")
    app_dir = Path(app_dir) if app_dir is not None else default_app_dir(app)
    if not app_dir.is_dir():
        raise BundleError(f"app folder not found: {app_dir} (pass the {app}_demo folder of an edgelight checkout)")
    if not (app_dir / APP_MARKERS[app]).is_file():
        raise BundleError(f"{app_dir} is not the {app} demo app (it has no {APP_MARKERS[app]}); pass the {app}_demo folder of an edgelight checkout")

    entries = [_checked_entry(Path(a), app) for a in artifacts]
    names = [e["file"] for e in entries]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise BundleError(f"two artifacts share the file name {duplicates[0]}; the app folder is flat, rename one")

    dest = app_dir / APP_ASSET_DIRS[app]
    dest.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for source, entry in zip(artifacts, entries):
        source = Path(source)
        target = dest / entry["file"]
        _copy(source, target)
        sidecar_target = dest / (entry["file"] + ".json")
        shutil.copyfile(sidecar_path(source), sidecar_target)
        written += [target, sidecar_target]

    manifest_path = dest / MANIFEST_NAME
    kept = [m for m in _read_manifest(manifest_path) if m.get("file") not in names and (dest / str(m.get("file"))).exists()]
    manifest = {"schema_version": 1, "app": app, "models": kept + entries}
    tmp = manifest_path.with_name(MANIFEST_NAME + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(tmp, manifest_path)
    written.append(manifest_path)
    return written


def _check_app(app: str) -> None:
    if app not in APP_ASSET_DIRS:
        raise BundleError(f"unknown app '{app}': choose android or ios")


def _checked_entry(artifact: Path, app: str) -> dict:
    from edgelight.targets import suffixes

    suffix, carried = artifact.suffix, app_suffixes(app)
    if suffix not in suffixes() or suffix == ".safetensors":
        raise BundleError(f"{artifact}: not an exported artifact ({', '.join(s for s in suffixes() if s != '.safetensors')})")
    if suffix not in carried:
        others = [a for a in APP_MARKERS if a != app and suffix in app_suffixes(a)]
        raise BundleError(f"{artifact}: {suffix} files run on {', '.join(others) or 'no demo app'}, not {app} (the {app} app takes {', '.join(carried)})")
    is_package = suffix == ".mlpackage"
    if not (artifact.is_dir() if is_package else artifact.is_file()):
        raise BundleError(f"artifact not found: {artifact}")
    from edgelight.artifacts import SidecarError, read_sidecar

    try:
        meta = read_sidecar(artifact)  # the schema's rules: model, precision, input_shape, mean, std, labels
    except SidecarError as e:
        raise BundleError(str(e)) from None
    if meta is None:
        raise BundleError(f"{artifact}: missing sidecar {sidecar_path(artifact).name} (export writes it next to the artifact)")
    size, sha256 = content_digest(artifact)
    exported = meta.get("bytes")
    if isinstance(exported, int) and exported != size:
        raise BundleError(f"{artifact} is {size} bytes but its sidecar says {exported}: it changed or was cut short after export; export it again")
    if meta.get("sha256") and meta["sha256"] != sha256:
        raise BundleError(f"{artifact}'s sha256 differs from its sidecar's: it changed after export; export it again")
    if meta["input_shape"][1] not in (1, 3):
        raise BundleError(f"{sidecar_path(artifact)}: the apps feed camera images with 1 or 3 channels, input_shape has {meta['input_shape'][1]}")
    return {
        "file": artifact.name,
        "model": meta["model"],
        "runtime": carried[suffix],
        "precision": meta["precision"],
        "input_shape": meta["input_shape"],
        "mean": [float(v) for v in meta["mean"]],
        "std": [float(v) for v in meta["std"]],
        "labels": meta["labels"],
        "bytes": size,
        "sha256": None if is_package else sha256,
    }


def _copy(source: Path, target: Path) -> None:
    # An .mlpackage is a folder: replace it whole so no stale weights survive from an older bundle.
    if target.is_dir():
        shutil.rmtree(target)
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        shutil.copyfile(source, target)


def _read_manifest(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError:
        raise BundleError(f"{path}: existing manifest is not valid JSON; delete it and bundle again") from None
    models = data.get("models") if isinstance(data, dict) else None
    return [m for m in models if isinstance(m, dict)] if isinstance(models, list) else []
