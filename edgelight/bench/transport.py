"""Getting a bench plan onto a phone and its records back: adb for Android, devicectl for iOS.

One small interface, ``DeviceTransport``: ``connect() -> device dict`` then
``run_plan(plan, files, on_record) -> records``. Every external command goes through an
executor (argv -> Completed), so the real ``adb``/``xcrun`` binaries are used in production and a
recorded transcript of a real exchange replays them in tests (``RecordedAdb``).
Records reach ``on_record`` as soon as the phone reports them, so a phone that drops mid-run
loses nothing already finished. On Android, ``run_native`` does the same with edgelight-bench (the C++
runner) pushed next to the plan and run by ``adb shell``, no app involved.
"""

import base64
import contextlib
import json
import os
import shlex
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from edgelight.bench.records import SCHEMA_VERSION, RecordError, upgrade_record, validate_plan, validate_record, validate_results
from edgelight.errors import StepError

ANDROID_PACKAGE = "dev.edgelight.demo"
ANDROID_ACTIVITY = ".BenchmarkActivity"
ANDROID_DIR = "/data/local/tmp/edgelight-bench"
ANDROID_NATIVE_DIR = "/data/local/tmp/edgelight-native"  # --runner native: the binary, its libraries, the plan and its files
IOS_BUNDLE = "dev.edgelight.demo"
IOS_DIR = "Documents/edgelight-bench"
ERROR_FILE = "bench_error.txt"  # what both apps write instead of results when the plan is unusable
GONE = ("offline", "no devices/emulators found", "not found", "unauthorized", "closed")  # in adb's 'error:' lines


class DeviceError(StepError):
    """No device, a device that dropped, or a demo app that failed; records kept so far stay kept."""


@dataclass
class Completed:
    returncode: int
    stdout: str
    stderr: str


Executor = Callable[[list[str], float], Completed]


def _is_local(arg: str) -> bool:
    return os.path.isabs(arg) and (os.path.exists(arg) or os.path.isdir(os.path.dirname(arg)))


def _portable(argv: list[str]) -> list[str]:
    """Host paths (inputs, and outputs about to be written) differ per run; a transcript names them '<local>/NAME'."""
    return [f"<local>/{Path(a).name}" if _is_local(a) else a for a in argv]


class SubprocessExecutor:
    """Runs the real binary. With ``record_to``, appends each exchange to a transcript (JSON lines)."""

    def __init__(self, record_to: Path | None = None):
        self.record_to = Path(record_to) if record_to else None

    def __call__(self, argv: list[str], timeout: float = 120.0) -> Completed:
        try:
            p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        except FileNotFoundError:
            raise DeviceError(f"'{argv[0]}' is not on PATH (Android: install platform-tools; iOS: Xcode 16+ for devicectl)") from None
        except subprocess.TimeoutExpired:
            raise DeviceError(f"'{shlex.join(argv[:4])} ...' did not answer within {timeout:.0f} s") from None
        done = Completed(p.returncode, p.stdout, p.stderr)
        if self.record_to:
            exchange = {"argv": _portable(argv), "returncode": p.returncode, "stdout": p.stdout, "stderr": p.stderr}
            outs = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a in ("--json-output", "--destination") and os.path.isfile(argv[i + 1])]
            if outs:  # files devicectl wrote on the host, so a replay can recreate them
                exchange["writes"] = {f"<local>/{Path(o).name}": Path(o).read_text() for o in outs}
            if "pull" in argv[:4] and os.path.isfile(argv[-1]):  # adb pull REMOTE LOCAL: a binary file
                exchange["writes_b64"] = {f"<local>/{Path(argv[-1]).name}": base64.b64encode(Path(argv[-1]).read_bytes()).decode()}
            with open(self.record_to, "a") as f:
                f.write(json.dumps(exchange) + "\n")
        return done


class RecordedAdb:
    """Replays a transcript written by ``SubprocessExecutor(record_to=...)``: a test fixture, not a runtime.

    Each call must match the next recorded argv exactly (host paths as '<local>/NAME'), so a
    change in the protocol fails the test instead of drifting from what a real phone answered.
    An exchange may carry ``writes`` {"<local>/NAME": text}: files the real command wrote on the
    host (devicectl's --json-output and copy from), recreated at the path given in this call;
    ``writes_b64`` the same for binary files (adb pull of an ETDump).
    """

    def __init__(self, transcript: Path | list[dict]):
        lines = transcript if isinstance(transcript, list) else [json.loads(s) for s in Path(transcript).read_text().splitlines() if s.strip()]
        self.exchanges = list(lines)
        self.calls: list[list[str]] = []

    def __call__(self, argv: list[str], timeout: float = 120.0) -> Completed:
        got = _portable(argv)
        self.calls.append(got)
        if not self.exchanges:
            raise AssertionError(f"transcript exhausted; unexpected call {got}")
        ex = self.exchanges.pop(0)
        if ex["argv"] != got:
            raise AssertionError(f"call {len(self.calls)}: expected {ex['argv']}, got {got}")
        for portable, text in ex.get("writes", {}).items():
            Path(argv[got.index(portable)]).write_text(text)
        for portable, data in ex.get("writes_b64", {}).items():  # binary files (adb pull of an ETDump)
            Path(argv[got.index(portable)]).write_bytes(base64.b64decode(data))
        return Completed(ex["returncode"], ex["stdout"], ex["stderr"])


class DeviceTransport(Protocol):
    kind: str

    def connect(self) -> dict: ...

    def run_plan(self, plan: dict, files: list[Path], on_record: Callable[[dict], None]) -> list[dict]: ...


def _merge_device(record: dict, device: dict) -> dict:
    """The app's own device fields win; the host fills what it left empty (SoC, pinning...)."""
    dev = dict(record.get("device") or {})
    for k, v in device.items():
        if dev.get(k) in (None, ""):
            dev[k] = v
    return {**record, "device": dev}


def _deliver(doc: dict, seen: int, device: dict, on_record) -> list[dict]:
    """New records from a results document, validated, in order."""
    if not isinstance(doc, dict) or not isinstance(doc.get("records"), list):
        raise DeviceError(f"the app's results file is not {{'schema_version': {SCHEMA_VERSION}, 'records': [...]}}")
    new = []
    for r in doc["records"][seen:]:
        r = _merge_device(upgrade_record(r), device)  # an app from an older release writes version 1
        try:
            validate_record(r)
        except RecordError as e:
            raise DeviceError(f"the app wrote a record that breaks the schema: {e}") from None
        on_record(r)
        new.append(r)
    return new


def big_core_mask(freqs: dict[int, int]) -> str | None:
    """Hex affinity mask of the cores with the highest max frequency (the 'big' cluster)."""
    if not freqs:
        return None
    top = max(freqs.values())
    return format(sum(1 << c for c, f in freqs.items() if f == top), "x")


class AdbTransport:
    kind = "android"

    def __init__(self, serial: str | None = None, executor: Executor | None = None, package: str = ANDROID_PACKAGE, poll_s: float = 2.0, timeout_s: float = 1800.0, sleep=time.sleep):
        self.serial, self.package = serial, package
        self.run = executor or SubprocessExecutor(os.environ.get("EDGELIGHT_ADB_RECORD"))
        self.poll_s, self.timeout_s, self.sleep = poll_s, timeout_s, sleep
        self.device: dict = {}

    def _adb(self, *args: str, ok_codes=(0,)) -> Completed:
        done = self.run(["adb", "-s", self.serial, *args], 120.0)
        text = (done.stderr + done.stdout).strip()
        lost = [ln for ln in text.splitlines() if ln.startswith(("error:", "adb: error:")) and any(g in ln for g in GONE)]
        if lost:
            raise DeviceError(f"Android device {self.serial} dropped ({lost[0]})")
        if done.returncode not in ok_codes:
            raise DeviceError(f"adb {' '.join(args[:2])} failed ({done.returncode}): {text or 'no output'}")
        return done

    def connect(self) -> dict:
        out = self.run(["adb", "devices"], 30.0)
        if out.returncode != 0:
            raise DeviceError(f"adb devices failed: {(out.stderr or out.stdout).strip()}")
        rows = [ln.split() for ln in out.stdout.splitlines() if ln.strip() and not ln.startswith(("*", "List of devices"))]
        ready = [r[0] for r in rows if len(r) > 1 and r[1] == "device"]
        states = {r[0]: r[1] for r in rows if len(r) > 1}
        if self.serial and states.get(self.serial, "device") != "device":
            raise DeviceError(f"Android device {self.serial} is {states[self.serial]} (unlock it and accept the USB debugging prompt)")
        if self.serial is None:
            if not ready:
                raise DeviceError("no Android device attached (adb devices lists none ready)" + (f"; seen: {states}" if states else ""))
            if len(ready) > 1:
                raise DeviceError(f"several Android devices attached ({', '.join(ready)}); pick one with --device android:SERIAL")
            self.serial = ready[0]
        elif self.serial not in ready:
            raise DeviceError(f"Android device {self.serial} is not attached (attached: {', '.join(ready) or 'none'})")
        props = {}
        for line in self._adb("shell", "getprop").stdout.splitlines():
            if line.startswith("[") and "]: [" in line:
                k, v = line[1:].split("]: [", 1)
                props[k] = v.rstrip("]")
        loop = "for c in /sys/devices/system/cpu/cpu[0-9]*; do echo ${c##*cpu} $(cat $c/cpufreq/cpuinfo_max_freq); done"
        freqs = {}
        for line in self._adb("shell", loop).stdout.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit():
                freqs[int(parts[0])] = int(parts[1])
        soc = " ".join(v for v in (props.get("ro.soc.manufacturer"), props.get("ro.soc.model")) if v) or props.get("ro.board.platform") or props.get("ro.hardware")
        self.device = {
            "kind": "android",
            "name": " ".join(v for v in (props.get("ro.product.manufacturer"), props.get("ro.product.model")) if v) or self.serial,
            "serial": self.serial,
            "cpu": f"{props.get('ro.product.cpu.abi', '?')}, {len(freqs)} cores, max {max(freqs.values()) // 1000 if freqs else '?'} MHz",
            "soc": soc,
            "os": f"Android {props.get('ro.build.version.release', '?')} (API {props.get('ro.build.version.sdk', '?')})",
            "cores_requested": big_core_mask(freqs),  # what the app is asked to pin; cores_pinned is what it reports
            "compute_units": None,
        }
        return self.device

    def run_plan(self, plan: dict, files: list[Path], on_record: Callable[[dict], None]) -> list[dict]:
        validate_plan(plan)
        results = plan.get("results", "bench_results.json")
        self._adb("shell", f"rm -rf {ANDROID_DIR} && mkdir -p {ANDROID_DIR}")
        with tempfile.TemporaryDirectory() as tmp:
            plan_file = Path(tmp) / "bench_plan.json"
            plan_file.write_text(json.dumps(plan, indent=1))
            for f in [*files, plan_file]:
                self._adb("push", str(f), f"{ANDROID_DIR}/{f.name}")
        self._adb("shell", f"run-as {self.package} rm -f files/{results}")
        # adb shell joins argv with spaces: an empty extra would swallow the next flag, so leave it out.
        extras = {"bench_plan": f"{ANDROID_DIR}/bench_plan.json", "cpu_mask": self.device.get("cores_requested"), "serial": self.serial}
        flags = [a for k, v in extras.items() if v for a in ("--es", k, v)]
        start = self._adb("shell", "am", "start", "-W", "-S", "-n", f"{self.package}/{ANDROID_ACTIVITY}", *flags)
        if "Error" in start.stdout:
            raise DeviceError(f"could not start the benchmark activity (is android_demo installed?): {start.stdout.strip()}")
        got: list[dict] = []
        want, deadline = len(plan["artifacts"]), time.monotonic() + self.timeout_s
        while True:
            cat = self._adb("exec-out", "run-as", self.package, "cat", f"files/{results}", ok_codes=(0, 1))
            if cat.returncode == 0:
                try:
                    got += _deliver(json.loads(cat.stdout), len(got), self.device, on_record)
                except json.JSONDecodeError:
                    pass  # caught mid-write; the next poll reads it whole
            if len(got) >= want:
                return got
            err = self._adb("exec-out", "run-as", self.package, "cat", f"files/{ERROR_FILE}", ok_codes=(0, 1))
            if err.stdout.startswith("run-as:"):
                raise DeviceError(f"cannot read the app's files ({err.stdout.strip()}); install a debuggable android_demo build")
            if err.returncode == 0 and err.stdout.strip() and not err.stdout.startswith("cat:"):
                raise DeviceError(f"the benchmark app rejected the plan: {err.stdout.strip()}")
            if self._adb("shell", "pidof", self.package, ok_codes=(0, 1)).returncode != 0:
                raise DeviceError(f"the benchmark app stopped after {len(got)} of {want} records (see adb logcat)")
            if time.monotonic() > deadline:
                raise DeviceError(f"timed out after {self.timeout_s:.0f} s with {len(got)} of {want} records")
            self.sleep(self.poll_s)

    def run_native(self, folder: Path, plan: dict, runner: list[Path], on_record: Callable[[dict], None]) -> str | None:
        """edgelight-bench over adb, as executor_runner is run: push ``runner`` (the binary, then its shared
        libraries), the plan and every file in ``folder``; start it in the background; read its results file
        as it grows; remove all of it. Returns why it stopped before the last record, or None."""
        d, binary, results = ANDROID_NATIVE_DIR, runner[0].name, plan["results"]
        self._adb("shell", f"rm -rf {d} && mkdir -p {d}")
        try:
            for f in [*runner, *sorted(folder.iterdir())]:
                self._adb("push", str(f.resolve()), f"{d}/{f.name}")  # resolve: the plan folder links to the artifacts
            self._adb("shell", f"chmod 755 {d}/{binary}")
            pin = f"taskset {self.device['cores_requested']} " if self.device.get("cores_requested") else ""
            # detached, so a long plan does not hang on one adb shell; its exit code lands in a file
            self._adb("shell", f"cd {d} && (LD_LIBRARY_PATH={d} {pin}./{binary} --plan plan.json --results {results} > runner.log 2>&1; echo $? > exit_code) </dev/null >/dev/null 2>&1 &")
            got, want, deadline = 0, len(plan["artifacts"]), time.monotonic() + self.timeout_s
            while True:
                code = self._adb("exec-out", "cat", f"{d}/exit_code", ok_codes=(0, 1))
                exited = code.stdout.strip() if code.returncode == 0 and code.stdout.strip().lstrip("-").isdigit() else None
                cat = self._adb("exec-out", "cat", f"{d}/{results}", ok_codes=(0, 1))  # after exit_code: once it exited, this read is final
                if cat.returncode == 0:
                    try:
                        records = validate_results(json.loads(cat.stdout))
                    except json.JSONDecodeError:
                        records = []  # the runner renames a whole file into place, but a read may race a rename on some file systems
                    except RecordError as e:
                        raise DeviceError(f"edgelight-bench wrote a record that breaks the schema: {e}") from None
                    for r in records[got:]:
                        on_record(r)
                    got = max(got, len(records))
                if got >= want:
                    self._pull_etdumps(folder, plan["artifacts"][:got])
                    return None
                if exited is not None:
                    self._pull_etdumps(folder, plan["artifacts"][:got])
                    log = self._adb("exec-out", "cat", f"{d}/runner.log", ok_codes=(0, 1)).stdout.strip().splitlines()
                    own = [ln for ln in log if ln.startswith(f"{binary}:")]  # its own error line, not the runtime's log
                    return f"edgelight-bench exited with code {exited}: {(own or log or ['no output'])[-1]}"
                if time.monotonic() > deadline:
                    self._adb("shell", f"kill $(pidof {binary})", ok_codes=(0, 1))
                    return f"edgelight-bench timed out after {self.timeout_s:.0f} s with {got} of {want} records"
                self.sleep(self.poll_s)
        finally:
            with contextlib.suppress(DeviceError):  # a phone that dropped cannot be cleaned; the next run starts with rm -rf
                self._adb("shell", f"rm -rf {d}")

    def _pull_etdumps(self, folder: Path, entries: list[dict]) -> None:
        """The ETDumps the plan asked for, next to the plan here (a failed record wrote none: adb pull says 1)."""
        for entry in entries:
            if "etdump" in entry:
                self._adb("pull", f"{ANDROID_NATIVE_DIR}/{entry['etdump']}", str(folder / entry["etdump"]), ok_codes=(0, 1))


class DevicectlTransport:
    """iOS over ``xcrun devicectl`` (Xcode 16+ for --console, macOS): install, copy in, launch, copy out."""

    kind = "ios"

    def __init__(self, udid: str | None = None, executor: Executor | None = None, bundle: str = IOS_BUNDLE, app: Path | None = None):
        self.udid, self.bundle = udid, bundle
        self.app = Path(app) if app else (Path(os.environ["EDGELIGHT_IOS_APP"]) if os.environ.get("EDGELIGHT_IOS_APP") else None)
        self.run = executor or SubprocessExecutor()
        self.device: dict = {}

    def _ctl(self, *args: str, timeout: float = 300.0) -> Completed:
        done = self.run(["xcrun", "devicectl", *args], timeout)
        if done.returncode != 0:
            raise DeviceError(f"devicectl {' '.join(args[:2])} failed: {(done.stderr or done.stdout).strip()[-300:]}")
        return done

    def _container(self, direction: str, source: str, dest: str) -> None:
        self._ctl("device", "copy", direction, "--device", self.udid, "--domain-type", "appDataContainer", "--domain-identifier", self.bundle, "--source", source, "--destination", dest)

    def connect(self) -> dict:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "devices.json"
            self._ctl("list", "devices", "--json-output", str(out), timeout=60)
            devices = json.loads(out.read_text()).get("result", {}).get("devices", [])
        found = [d for d in devices if self.udid in (None, d.get("identifier"), d.get("hardwareProperties", {}).get("udid"))]
        if not found:
            raise DeviceError("no iOS device paired and connected" if self.udid is None else f"iOS device {self.udid} is not connected")
        if len(found) > 1:
            raise DeviceError("several iOS devices connected; pick one with --device ios:UDID")
        d = found[0]
        hw, props = d.get("hardwareProperties", {}), d.get("deviceProperties", {})
        self.udid = hw.get("udid") or d.get("identifier")
        self.device = {"kind": "ios", "name": hw.get("marketingName") or props.get("name", "iPhone"), "serial": self.udid, "cpu": (hw.get("cpuType") or {}).get("name"), "soc": hw.get("productType"), "os": f"iOS {props.get('osVersionNumber', '?')}", "cores_pinned": None, "compute_units": None}
        return self.device

    def run_plan(self, plan: dict, files: list[Path], on_record: Callable[[dict], None]) -> list[dict]:
        validate_plan(plan)
        results = plan.get("results", "bench_results.json")
        if self.app:
            self._ctl("device", "install", "app", "--device", self.udid, str(self.app))
        with tempfile.TemporaryDirectory() as tmp:
            plan_file = Path(tmp) / "bench_plan.json"
            plan_file.write_text(json.dumps(plan, indent=1))
            for f in [*files, plan_file]:
                self._container("to", str(f), f"{IOS_DIR}/{f.name}")
            # --console waits for the app to exit: benchmark mode quits when the plan is done.
            self._ctl("device", "process", "launch", "--device", self.udid, "--terminate-existing", "--console", self.bundle, "--bench-plan", f"{IOS_DIR}/bench_plan.json", timeout=3600)
            local = Path(tmp) / results
            try:
                self._container("from", f"{IOS_DIR}/{results}", str(local))
            except DeviceError:
                self._container("from", f"{IOS_DIR}/{ERROR_FILE}", str(Path(tmp) / ERROR_FILE))
                raise DeviceError(f"the iOS app wrote no results: {(Path(tmp) / ERROR_FILE).read_text().strip()}") from None
            got = _deliver(json.loads(local.read_text()), 0, self.device, on_record)
        if len(got) < len(plan["artifacts"]):
            raise DeviceError(f"the iOS app wrote {len(got)} of {len(plan['artifacts'])} records")
        return got


def make_transport(kind: str, ident: str | None) -> DeviceTransport:
    if kind == "android":
        return AdbTransport(ident)
    if kind == "ios":
        return DevicectlTransport(ident)
    raise ValueError(f"no transport for device kind '{kind}'")
