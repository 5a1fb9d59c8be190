"""The cached aarch64 environment: a Debian arm64 userland, the aarch64 runtime wheels and edgelight's native build.

Built once by ``edgelight device setup arm64`` into ``$EDGELIGHT_ARM64_DIR`` (default ~/.cache/edgelight/arm64),
in three steps, each written to a temporary folder and renamed into place when complete, with a stamp that
names what it was built from. A step whose stamp matches is skipped (idempotent); an interrupted step leaves
only its temporary folder, removed by the next run (resumable); a stamp that no longer matches (other pinned
versions, changed native sources) means that step is rebuilt.

- ``rootfs``: ``debootstrap --foreign`` (its first stage downloads the packages) then every package unpacked on
  the host, no emulated second stage: the lane needs python3 and its libraries, not a bootable system.
- ``wheels``: the aarch64 wheels of this install's own executorch, ai-edge-litert and numpy (same versions), by
  the host's pip with ``--platform``, into a folder the aarch64 Python imports from.
- ``native``: edgelight's kernel project cross-compiled against the aarch64 executorch wheel: the kernel tests
  and ``edgelight-bench`` (the native .pte runner, which also carries the kernels); and ``libedgelight_litert.so``,
  the LiteRT custom ops, against the aarch64 ai-edge-litert wheel.
"""

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from edgelight.errors import StepError, UsageError

# host command -> the Debian package that has it
HOST_TOOLS = {"qemu-aarch64-static": "qemu-user-static", "proot": "proot", "debootstrap": "debootstrap", "aarch64-linux-gnu-g++": "g++-aarch64-linux-gnu"}
SUITE = "bookworm"  # Debian 12: python3.11, the same CPython minor version as the host's wheels
DEFAULT_MIRROR = "http://deb.debian.org/debian"
ROOTFS_PACKAGES = ("python3", "libstdc++6")
ROOTFS_LAYOUT = 2  # 2: the sysfs CPU lists below; a different number rebuilds the userland
WHEELS = ("executorch", "ai-edge-litert", "numpy", "jsonschema")  # what the lane's runners import (no torch: see docs/arm64.md)
PLATFORMS = [f"manylinux_2_{v}_aarch64" for v in range(36, 16, -1)] + ["manylinux2014_aarch64", "linux_aarch64"]  # glibc 2.36
STEPS = ("rootfs", "wheels", "native")
NATIVE_TARGETS = ("edgelight_kernels_test", "edgelight-bench")


class Arm64EnvError(StepError):
    """The aarch64 environment could not be built or used."""


def home() -> Path:
    return Path(os.environ.get("EDGELIGHT_ARM64_DIR") or Path.home() / ".cache" / "edgelight" / "arm64").expanduser()


HOST_HEADERS = {"/usr/include/nlohmann/json.hpp": "nlohmann-json3-dev"}  # edgelight-bench's JSON (header-only)


def missing_tools() -> list[str]:
    missing = [tool for tool in HOST_TOOLS if shutil.which(tool) is None]
    return missing + [header for header in HOST_HEADERS if not Path(header).is_file()]


def check_tools() -> None:
    missing = missing_tools()
    if missing:
        packages = " ".join(dict.fromkeys({**HOST_TOOLS, **HOST_HEADERS}[t] for t in missing))
        raise UsageError(f"the ARM64 lane needs {', '.join(missing)}: sudo apt-get install -y {packages}")


def _pins() -> dict[str, str]:
    pins = {}
    for name in WHEELS:
        try:
            pins[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            raise UsageError(f"{name} is not installed on this host; the ARM64 lane installs the same version for aarch64") from None
    return pins


def _native_sources() -> list[Path]:
    from edgelight.ops.kernels import SOURCE_DIR
    from edgelight.targets.tflite import native as litert_native

    kernels = (p for p in SOURCE_DIR.rglob("*") if p.suffix in {".cpp", ".h", ".txt", ".cmake"} and "build" not in p.parts)
    return sorted({*kernels, *litert_native.sources()})


def expected_stamps() -> dict[str, dict]:
    """What each step's stamp must say for it to count as built (a later step also names the one it builds on)."""
    digest = hashlib.sha256()
    for p in _native_sources():
        digest.update(p.name.encode() + b"\0" + p.read_bytes())
    rootfs = {"suite": SUITE, "packages": list(ROOTFS_PACKAGES), "layout": ROOTFS_LAYOUT}
    wheels = {"pins": _pins(), "python": "3.11"}
    return {"rootfs": rootfs, "wheels": wheels, "native": {"sources": digest.hexdigest()[:16], "executorch": wheels["pins"]["executorch"]}}


@dataclass(frozen=True)
class Arm64Env:
    root: Path

    @property
    def rootfs(self) -> Path:
        return self.root / "rootfs"

    @property
    def site(self) -> Path:
        return self.root / "wheels"

    @property
    def native(self) -> Path:
        return self.root / "native"

    def stamp(self, step: str) -> dict | None:
        try:
            return json.loads((self.root / f"{step}.json").read_text())
        except (OSError, json.JSONDecodeError):
            return None

    def state(self) -> dict[str, str]:
        """step -> 'ready' | 'missing' | 'stale' (built from other versions or sources) | 'interrupted'."""
        want = expected_stamps()
        out = {}
        for step in STEPS:
            folder, got = self.root / step, self.stamp(step)
            if got is not None and folder.is_dir():
                out[step] = "ready" if got.get("built_from") == want[step] else "stale"
            else:
                out[step] = "interrupted" if any(self.root.glob(f"{step}.partial-*")) else "missing"
        return out

    def python(self, args: list[str], cpu: str, binds: list[Path] = ()) -> tuple[list[str], dict]:
        """argv + environment that run the aarch64 python3 with the lane's wheels and edgelight's source."""
        src = Path(__file__).resolve().parents[2]  # the folder that holds the edgelight package
        argv = ["proot", "-q", "qemu-aarch64-static", "-r", str(self.rootfs), "-w", "/", "-b", "/proc", "-b", "/dev"]
        # the host's /sys is left out: XNNPACK's cpuinfo crashes reading it under emulation (it warns without it)
        for path in dict.fromkeys([src, self.site, *binds]):
            argv += ["-b", str(path)]
        argv += ["-b", str(self.native)]
        # the cross-built LiteRT custom ops: the aarch64 Python has no compiler to build them
        kernels = self.native / "libedgelight_litert.so"
        argv += ["/usr/bin/env", f"PYTHONPATH={src}:{self.site}", "PYTHONUNBUFFERED=1", f"EDGELIGHT_LITERT_KERNELS={kernels}", "/usr/bin/python3", *args]
        return argv, {**_clean_env(), "QEMU_CPU": cpu}

    def binary(self, name: str, args: list[str], cpu: str) -> tuple[list[str], dict]:
        """argv + environment that run one of the cross-compiled programs (libraries from the userland)."""
        return ["qemu-aarch64-static", "-L", str(self.rootfs), str(self.native / name), *args], {**_clean_env(), "QEMU_CPU": cpu}


def _clean_env() -> dict:
    # the host venv's variables mean nothing to the aarch64 interpreter
    return {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "LD_LIBRARY_PATH"}}


def require(cpu: str | None = None) -> Arm64Env:
    """The built environment, or a clear error naming what is missing and the command that builds it."""
    check_tools()
    env = Arm64Env(home())
    state = env.state()
    if state["native"] != "ready" and state["rootfs"] == state["wheels"] == "ready":
        setup(say=lambda line: None)  # changed kernel sources: a 5-second cross build, nothing downloaded
        state = env.state()
    bad = {s: v for s, v in state.items() if v != "ready"}
    if bad:
        what = ", ".join(f"{s} {v}" for s, v in bad.items())
        raise UsageError(f"the ARM64 environment in {env.root} is not ready ({what}); run: edgelight device setup arm64")
    if cpu is not None:
        check_cpu(cpu)
    return env


def qemu_cpus() -> list[str]:
    out = subprocess.run(["qemu-aarch64-static", "-cpu", "help"], capture_output=True, text=True, timeout=30).stdout
    return [m.group(1) for m in re.finditer(r"^\s+(\S+)\s*$", out, re.M)]


def check_cpu(cpu: str) -> None:
    """A qemu CPU model, optionally with properties (``max,sme=off``)."""
    known = qemu_cpus()
    if known and cpu.split(",")[0] not in known:
        raise UsageError(f"qemu-aarch64 does not emulate '{cpu}'; choose one of: {', '.join(known)} (properties such as max,sme=off may follow)")


def qemu_version() -> str:
    out = subprocess.run(["qemu-aarch64-static", "--version"], capture_output=True, text=True, timeout=30).stdout
    match = re.search(r"version (\S+)", out)
    return match.group(1) if match else "unknown"


def _run(cmd: list[str], log: Path, what: str, env: dict | None = None) -> None:
    with open(log, "a") as fh:
        fh.write("$ " + " ".join(cmd) + "\n")
        fh.flush()
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env)
    if proc.returncode != 0:
        lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
        tail = next((ln for ln in reversed(lines) if re.search(r"error|E:|failed|No matching", ln, re.I)), lines[-1] if lines else "")
        raise Arm64EnvError(f"{what} failed (log: {log}): {tail[:240]}")


def _build_rootfs(tmp: Path, log: Path, mirror: str) -> None:
    _run(["debootstrap", "--foreign", "--arch=arm64", "--variant=minbase", f"--include={','.join(ROOTFS_PACKAGES)}", SUITE, str(tmp), mirror], log, "debootstrap (downloading the arm64 packages)")
    archives = sorted((tmp / "var/cache/apt/archives").glob("*.deb"))
    if not archives:
        raise Arm64EnvError(f"debootstrap left no packages in {tmp} (log: {log})")
    for deb in archives:  # unpacked on the host: no maintainer scripts run, none are needed to run python3
        _run(["dpkg-deb", "-x", str(deb), str(tmp)], log, f"unpacking {deb.name}")
        deb.unlink()
    # XNNPACK's cpuinfo reads these two lists; without them LiteRT's CompiledModel fails to start its CPU
    # accelerator (the host's own /sys is not bound: cpuinfo crashes reading the rest of it under emulation)
    cpus = tmp / "sys/devices/system/cpu"
    cpus.mkdir(parents=True, exist_ok=True)
    for name in ("possible", "present"):
        (cpus / name).write_text(f"0-{(os.cpu_count() or 1) - 1}\n")
    probe = subprocess.run(["qemu-aarch64-static", "-L", str(tmp), str(tmp / "usr/bin/python3"), "-c", "import platform; print(platform.machine())"], capture_output=True, text=True, timeout=120)
    if probe.stdout.strip() != "aarch64":
        raise Arm64EnvError(f"the arm64 python3 does not start under qemu-aarch64-static: {(probe.stderr or probe.stdout).strip()[-240:]}")


def _build_wheels(tmp: Path, log: Path, pins: dict[str, str]) -> None:
    platforms = [a for p in PLATFORMS for a in ("--platform", p)]
    base = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp", *platforms, "--target", str(tmp)]
    # executorch alone: only its runtime libraries and headers are used here, not its Python dependencies (torch)
    _run([*base, "--no-deps", f"executorch=={pins['executorch']}"], log, f"pip (the aarch64 wheel of executorch {pins['executorch']})")
    _run([*base, *(f"{n}=={v}" for n, v in pins.items() if n != "executorch")], log, "pip (the aarch64 wheels of " + ", ".join(f"{n} {v}" for n, v in pins.items() if n != "executorch") + ")")


def _build_native(tmp: Path, log: Path, site: Path) -> None:
    from edgelight.ops.kernels import SOURCE_DIR, find_cmake
    from edgelight.targets.tflite import native as litert_native

    cmake, build = find_cmake(), tmp / "build"
    ninja = shutil.which("ninja") or (Path(sys.executable).parent / "ninja")
    generator = ["-G", "Ninja", f"-DCMAKE_MAKE_PROGRAM={ninja}"] if Path(ninja).exists() else []

    def cross_build(source: Path, defines: list[str], targets: list[str], what: str) -> None:
        _run([cmake, "-S", str(source), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release",
              f"-DCMAKE_TOOLCHAIN_FILE={SOURCE_DIR / 'cmake' / 'aarch64-linux-gnu.cmake'}", *defines, *generator], log, f"cmake configure ({what})")
        _run([cmake, "--build", str(build), "--parallel", str(os.cpu_count() or 2), "--target", *targets], log, what)
        for name in targets:
            shutil.copy2(build / name, tmp / name)
        shutil.rmtree(build)

    cross_build(SOURCE_DIR, [f"-DCMAKE_PREFIX_PATH={site / 'executorch'}", "-DEDGELIGHT_KERNELS_TESTS=ON", "-DEDGELIGHT_BENCH_RUNNER=ON"],
                list(NATIVE_TARGETS), "the aarch64 cross build")
    # edgelight's LiteRT custom ops against the aarch64 wheel's libLiteRt.so (the lane's child loads it by path)
    cross_build(litert_native.SOURCE_DIR, [f"-DEDGELIGHT_LITERT_LIBRARY={site / 'ai_edge_litert' / 'libLiteRt.so'}"],
                [litert_native.LIB_NAME], "the aarch64 LiteRT custom-op build")


@contextlib.contextmanager
def _step_folder(root: Path, step: str):
    """A fresh temporary folder for one step, renamed to ``root/step`` when the block finishes without error."""
    for old in root.glob(f"{step}.partial-*"):  # left by an interrupted run
        shutil.rmtree(old, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f"{step}.partial-"))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    final = root / step
    (root / f"{step}.json").unlink(missing_ok=True)
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)


def setup(mirror: str = DEFAULT_MIRROR, force: bool = False, say=print, busy=None) -> Arm64Env:
    """Build what is missing or stale (all of it with ``force``); ``say`` gets one line per step, ``busy(text)``
    (a context manager, e.g. a spinner) wraps each step that builds."""
    check_tools()
    env = Arm64Env(home())
    env.root.mkdir(parents=True, exist_ok=True)
    with open(env.root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two setups at once would rename over each other
        return _setup(env, mirror, force, say, busy or (lambda text: contextlib.nullcontext()))


def _setup(env: Arm64Env, mirror: str, force: bool, say, busy) -> Arm64Env:
    want = expected_stamps()
    state = env.state()
    log = env.root / "setup.log"
    builders = {
        "rootfs": lambda tmp: _build_rootfs(tmp, log, mirror),
        "wheels": lambda tmp: _build_wheels(tmp, log, want["wheels"]["pins"]),
        "native": lambda tmp: _build_native(tmp, log, env.site),
    }
    titles = {"rootfs": f"Debian {SUITE} arm64 userland (python3)", "wheels": "aarch64 wheels: " + ", ".join(f"{n} {v}" for n, v in want["wheels"]["pins"].items()), "native": "edgelight's kernels and edgelight-bench, cross-compiled"}
    rebuilt = set()
    for step in STEPS:
        if state[step] == "ready" and not force and not (step == "native" and "wheels" in rebuilt):  # native links the wheels' libraries
            say(f"arm64: {step}: ready ({titles[step]})")
            continue
        say(f"arm64: {step}: building {titles[step]} ..." + (" (the last run was interrupted; starting this step again)" if state[step] == "interrupted" else ""))
        started = time.monotonic()
        with busy(f"arm64: {step} (log: {log})"), _step_folder(env.root, step) as tmp:
            builders[step](tmp)
        (env.root / f"{step}.json").write_text(json.dumps({"built_from": want[step], "seconds": round(time.monotonic() - started, 1)}, indent=1))
        rebuilt.add(step)
        say(f"arm64: {step}: done in {time.monotonic() - started:.0f} s")
    return env
