"""Fixtures shared by the tests, and the suite's time budget.

An export is the slow step, so each distinct one runs once per CI run, whichever pytest-xdist worker asks first:
the artifacts live in a folder all workers share, keyed by source + options, guarded by a file lock.
"""

import fcntl
import hashlib
import json
import os
import time
from pathlib import Path

import pytest

BUDGET_FILE = Path(__file__).with_name("budget.json")


def _shared_root(tmp_path_factory) -> Path:
    """A folder every xdist worker of this run sees (the workers' base temps are siblings under it)."""
    base = tmp_path_factory.getbasetemp()
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "shared-exports"
    root.mkdir(exist_ok=True)
    return root


class _Lock:
    """An exclusive flock on a file: one worker builds an artifact while the others wait for it."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        self.fd = os.open(self.path, os.O_CREAT | os.O_RDWR)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc):
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """``exported(source, target, precision, **options)`` -> ExportResult, built once per run for all workers.

    Tests that only read an artifact (inventories, sizes, parity) share it; tests that need a fresh
    export (determinism, failures) call ``export_model`` themselves.
    """
    from edgelight.checkpoint import builtin_checkpoint_dir
    from edgelight.pipeline import ExportResult, export_model

    root = _shared_root(tmp_path_factory)
    cache: dict[str, ExportResult] = {}

    def make(source: str, target: str, precision: str, size: int | None = None, **options):
        source = str(builtin_checkpoint_dir(source) or source)  # a name and its built-in folder are one export
        key = json.dumps([source, target, precision, size, sorted(options.items())])
        if key in cache:
            return cache[key]
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        folder, done = root / digest, root / f"{digest}.json"
        with _Lock(root / f"{digest}.lock"):
            if done.exists():
                fields = json.loads(done.read_text())
                result = ExportResult(**{**fields, "artifact": Path(fields["artifact"]), "sidecar": Path(fields["sidecar"])})
            else:
                result = export_model(source, target, precision, size=size, out=folder, options=options, threads=1)
                done.write_text(json.dumps(result.to_dict()))
        cache[key] = result
        return result

    return make


@pytest.fixture(scope="session")
def random_checkpoints(tmp_path_factory):
    """``random_checkpoints(name, size=32, **model_args)`` -> a checkpoint folder (random weights, trained-like
    BatchNorms), written once per run in the shared folder so that every worker's exports share one cache key."""
    from edgelight.testing import random_checkpoint

    root = _shared_root(tmp_path_factory)

    def make(name: str, size: int = 32, **model_args) -> Path:
        tag = "-".join([name, str(size), *(f"{k}{v}" for k, v in sorted(model_args.items()))])
        path = root / f"ckpt-{tag}"
        with _Lock(root / f"ckpt-{tag}.lock"):
            if not (path / "config.json").exists():
                random_checkpoint(name, path, size=size, **model_args)
        return path

    return make


@pytest.fixture(scope="session")
def digit_folder(tmp_path_factory) -> Path:
    """The digits as PNG files in class folders (ROOT/<digit>/*.png, 16x16), written once per run."""
    from edgelight.testing import write_digit_folder

    root = _shared_root(tmp_path_factory)
    with _Lock(root / "digit-folder.lock"):
        if not (root / "digit-folder" / "9").is_dir():
            write_digit_folder(root / "digit-folder.tmp")
            (root / "digit-folder.tmp").rename(root / "digit-folder")
    return root / "digit-folder"


@pytest.fixture(scope="session")
def folder_checkpoint(tmp_path_factory, digit_folder) -> Path:
    """shiftresnet-20-e1 trained 8 epochs at 16x16 on ``digit_folder`` (about 96% test accuracy: int8 then stays within a point), once per run."""
    from edgelight.train import train

    root = _shared_root(tmp_path_factory)
    with _Lock(root / "folder-ckpt.lock"):
        if not (root / "folder-ckpt" / "metrics.json").is_file():
            train("shiftresnet-20-e1", str(digit_folder), epochs=8, recipe="digits", size=16, out=root / "folder-ckpt.tmp", progress=False)
            (root / "folder-ckpt.tmp").rename(root / "folder-ckpt")
    return root / "folder-ckpt"


@pytest.fixture(scope="module")
def one_torch_thread():
    """Eager PyTorch on one thread: on 2 shared cores a second thread only contends (tiny passes got 100x slower)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# ---------------------------------------------------------------- the time budget (tests/budget.json)

_module_seconds: dict[str, float] = {}


def pytest_collection_modifyitems(config, items):
    """The few tests of over a minute go first: on two workers, one of them started last is a tail the other
    worker waits out (the sort is stable and the same in every worker, as xdist requires)."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)


def pytest_runtest_logreport(report):
    # on the controller under xdist this sees every worker's reports, so the totals cover the whole run
    module = report.nodeid.split("::")[0]
    _module_seconds[module] = _module_seconds.get(module, 0.0) + report.duration


def pytest_sessionstart(session):
    session.config._edgelight_started = time.monotonic()


def _is_full_run(config) -> bool:
    """Only the whole suite is held to the limit: a selection (-k, -m, one file) is always shorter."""
    tests = Path(__file__).parent.resolve()
    return not config.option.keyword and not config.option.markexpr and all(Path(a).resolve() == tests for a in config.args)


def pytest_sessionfinish(session, exitstatus):
    config = session.config
    if os.environ.get("PYTEST_XDIST_WORKER") or not BUDGET_FILE.exists():
        return
    config._edgelight_wall = time.monotonic() - config._edgelight_started
    limit = json.loads(BUDGET_FILE.read_text())["limit_seconds"]
    if config._edgelight_wall > limit and _is_full_run(config) and exitstatus == 0:
        config._edgelight_over_budget = True
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Each module's test time against its budget, and the wall time against the suite's limit."""
    if not hasattr(config, "_edgelight_wall"):
        return
    budget = json.loads(BUDGET_FILE.read_text())
    tr = terminalreporter
    tr.section("time budget (tests/budget.json)")
    for module, seconds in sorted(_module_seconds.items(), key=lambda kv: -kv[1]):
        expected = budget["modules"].get(module)
        flag = "" if expected is None or seconds <= 1.5 * expected + 10 else "  <- over 1.5x its budget"
        tr.write_line(f"{module:28s} {seconds:7.0f} s of test time (budget {expected if expected is not None else 'none'}){flag}")
    tr.write_line(f"wall time {config._edgelight_wall:.0f} s (limit {budget['limit_seconds']} s for the whole suite)")
    if getattr(config, "_edgelight_over_budget", False):
        tr.write_line(f"FAILED: the suite took {config._edgelight_wall:.0f} s, over its {budget['limit_seconds']} s limit", red=True)
