"""Benchmark harness: measure artifacts on the host or a phone, keep versioned records, report them.

``run_bench`` is the library call behind ``edgelight bench``; the record format is
bench_record.schema.json (docs/bench.md).
"""


def run_bench(*args, **kwargs):
    from edgelight.bench.harness import run_bench as _run

    return _run(*args, **kwargs)


__all__ = ["run_bench"]
