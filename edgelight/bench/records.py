"""Bench records: building them, validating them against the shared schema, and keeping them on disk.

A results file is ``{"schema_version": 1, "records": [...]}``. It is rewritten atomically after
every record, so a crash, a Ctrl-C or a phone that drops mid-run never loses a finished record.
"""

import datetime as _dt
import functools
import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from edgelight.errors import UsageError
from edgelight.utils.files import write_json

SCHEMA_VERSION = 2  # 2: precisions named w8a8 / w8 (version 1 said int8 for both); version 1 is upgraded on read
SCHEMA_DIR = Path(__file__).parent
RECORD_SCHEMA = SCHEMA_DIR / "bench_record.schema.json"
PLAN_SCHEMA = SCHEMA_DIR / "bench_plan.schema.json"


class RecordError(UsageError):
    """A record or results file that does not follow the schema."""


@functools.cache
def _validator(path: Path):
    import jsonschema

    schema = json.loads(path.read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _check(path: Path, obj, what: str) -> None:
    errors = sorted(_validator(path).iter_errors(obj), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        where = "/".join(str(p) for p in e.absolute_path) or "(top)"
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        raise RecordError(f"invalid {what} at {where}: {e.message}{more}")


def validate_record(record: dict) -> dict:
    _check(RECORD_SCHEMA, record, "bench record")
    return record


def validate_plan(plan: dict) -> dict:
    _check(PLAN_SCHEMA, plan, "bench plan")
    return plan


def upgrade_record(record: dict) -> dict:
    """A record in today's schema: version 1's 'int8' becomes w8a8 (w8 on Core ML)."""
    from edgelight.artifacts import current_precision

    if isinstance(record, dict) and record.get("schema_version") == 1:
        record = {**record, "schema_version": SCHEMA_VERSION, "precision": current_precision(str(record.get("runtime")), str(record.get("precision")))}
    return record


def validate_results(doc) -> list[dict]:
    """Check a whole results file (host or phone written, this version or 1) and return its records, upgraded."""
    if not isinstance(doc, dict) or doc.get("schema_version") not in (1, SCHEMA_VERSION) or not isinstance(doc.get("records"), list):
        raise RecordError(f'a results file must be {{"schema_version": {SCHEMA_VERSION}, "records": [...]}}')
    doc["records"] = [upgrade_record(r) for r in doc["records"]]
    for i, r in enumerate(doc["records"]):
        try:
            validate_record(r)
        except RecordError as e:
            raise RecordError(f"record {i}: {e}") from None
    return doc["records"]


def read_results(path: Path) -> list[dict]:
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise RecordError(f"'{path}' is not valid JSON ({e})") from None
    return validate_results(doc)


class ResultsFile:
    """An append-only results file; every append rewrites it whole and atomically.

    ``extra`` (e.g. the command that produced the results) is kept at the top level next to the records.
    """

    def __init__(self, path: Path | None, extra: dict | None = None, keep_existing: bool = False):
        self.path = Path(path) if path else None
        self.extra = dict(extra or {})
        self.records: list[dict] = []
        if self.path and keep_existing and self.path.is_file():
            self.records = read_results(self.path)
        if self.path:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def append(self, record: dict) -> None:
        validate_record(record)
        self.records.append(record)
        self.flush()

    def flush(self) -> None:
        if self.path:
            write_json(self.path, {**self.extra, "schema_version": SCHEMA_VERSION, "records": self.records})


def now_utc() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@functools.cache
def versions() -> dict[str, str]:
    from edgelight.targets import runtimes

    out = {"python": platform.python_version()}
    # the libraries whose version changes a figure (each runtime's record names its own); only installed ones
    for name in dict.fromkeys(["edgelight", "numpy", *(p for r in runtimes() for p in r.packages)]):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


@functools.cache
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    if platform.system() == "Darwin":
        try:
            return subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True, timeout=5).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or platform.machine()


def host_device() -> dict:
    affinity = None
    if hasattr(os, "sched_getaffinity"):
        cores = sorted(os.sched_getaffinity(0))
        affinity = ",".join(map(str, cores))
    return {"kind": "host", "name": platform.node() or "host", "serial": None, "cpu": cpu_model(), "soc": None, "os": f"{platform.system()} {platform.release()}", "cores_pinned": affinity, "compute_units": None}


def artifact_info(path: Path) -> dict:
    """Size on disk (a .mlpackage is a folder: all its files) and a sha256 of the content."""
    from edgelight.utils.files import content_digest

    size, sha256 = content_digest(path)
    return {"path": str(path), "bytes": size, "sha256": sha256}


def new_record(meta: dict, runtime: str, device: dict, threads: int | None, artifact: Path) -> dict:
    """A record with everything known before measuring; status starts as 'error' until a figure lands."""
    return {
        "schema_version": SCHEMA_VERSION,
        "model": meta["model"],
        "runtime": runtime,
        "precision": meta["precision"],
        "device": device,
        "threads": int(threads or 0),  # 0 = the runtime's default thread count
        "status": "error",
        "error": None,
        "artifact": artifact_info(artifact),
        "latency_ms": None,
        "memory": None,
        "accuracy": None,
        "params": meta.get("params"),
        "macs": meta.get("macs"),
        "nan_outputs": False,
        "op_profile": None,
        "versions": versions(),
        "timestamp": now_utc(),
    }
