#!/usr/bin/env bash
# The whole product on the embedded default data (called by `make demo` after setup and the
# doctor): generate the sample web crawl (+ image-only, text-only and held-out eval lists),
# serve it on 127.0.0.1, build the dataset versions with Ray (download -> filter -> dedup ->
# shard -> views), look at its rejects and replay a threshold, learn a visual tokenizer, pretrain the tiny model with every
# dual-encoder objective through Ray Train and SIMLA's single-stream model with its four, evaluate both on the held-out set,
# and print the report.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
CORPUS=data/sampleweb
PORT=${LIPFORGE_DEMO_PORT:-8765}
RUN="demo-$(date +%Y%m%d-%H%M%S)"  # a fresh run per demo: re-running one name resumes it
START=$(date +%s)

step() { printf '\n== %s\n' "$*"; }

step "1/9 sample web corpus: 2,000 shapes-world rows with a real crawl's mess (+ 600 image-only, 600 text-only, 500 held out)"
$PY -m pipelines sample-web --out "$CORPUS" --n 2000 --seed 0 --n-eval 500 --base-url "http://127.0.0.1:$PORT"

step "2/9 serving it on http://127.0.0.1:$PORT"
$PY -m pipelines serve-web "$CORPUS" --port "$PORT" > data/serve-web.log 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.2; done

step "3/9 build demo: download (img2dataset on Ray) -> filter -> dedup -> shard -> views"
$PY -m pipelines build configs/demo.yaml

step "4/9 build the image-only, text-only and held-out eval versions"
$PY -m pipelines build configs/demo-images.yaml
$PY -m pipelines build configs/demo-text.yaml
$PY -m pipelines build configs/demo-eval.yaml

step "5/9 catalog and data quality: why rows were rejected, one row explained, a threshold tried on the stored scores"
$PY -m catalog --root data list
$PY -m catalog --root data rejects demo@1
$PY -m pipelines explain --version demo@1 --row 3 --root data
$PY -m pipelines whatif demo@1 --root data --set filter.checks.image_too_small.min_size=300

step "6/9 visual tokenizer: a codebook over demo-images' patches (targets of masked image modelling)"
$PY -m training tokenizer build demo-images@latest --root data

step "7/9 pretraining with Ray Train: CLIP + FILIP + FLIP masking, DeCLIP's supervisions, FLAVA's MIM/MLM; evaluated on demo-eval"
$PY -m training train configs/train/demo.yaml --set "run.name=$RUN"

step "8/9 SIMLA with Ray Train: the single-stream model, ITC + momentum distillation, ITM hard negatives, XMM, PSL; evaluated on demo-eval"
$PY -m training train configs/train/simla.yaml --set "run.name=$RUN-simla" --set steps=150 --set batch_size=16

step "9/9 lineage: the runs, the versions they read, their evaluations"
$PY -m catalog --root data show "$RUN"
$PY -m catalog --root data show "$RUN-simla"

printf '\nDone in %d s. Browse datasets and models: %s -m catalog --root data serve  (http://127.0.0.1:8000/models/%s)\n' \
  "$(( $(date +%s) - START ))" "$PY" "$RUN"
printf 'Export the model to open_clip: %s -m training export %s --format open_clip exported/%s\n' "$PY" "$RUN" "$RUN"
