"""Fixtures shared by the export tests: an export is the slow step, so each distinct one runs once a session."""

import pytest


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """``exported(source, target, precision, **options)`` -> ExportResult, cached for the session.

    Tests that only read an artifact (inventories, sizes, parity) share it; tests that need a fresh
    export (determinism, failures) call ``export_model`` themselves.
    """
    from edgelight.checkpoint import builtin_checkpoint_dir
    from edgelight.export import export_model

    cache = {}

    def make(source: str, target: str, precision: str, size: int | None = None, **options):
        source = str(builtin_checkpoint_dir(source) or source)  # a name and its built-in folder are one export
        key = (source, target, precision, size, tuple(sorted(options.items())))
        if key not in cache:
            out = tmp_path_factory.mktemp(f"{target}-{precision}")
            cache[key] = export_model(source, target, precision, size=size, out=out, options=options, threads=1)
        return cache[key]

    return make


@pytest.fixture(scope="module")
def one_torch_thread():
    """Eager PyTorch on one thread: on 2 shared cores a second thread only contends (tiny passes got 100x slower)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
