#!/usr/bin/env bash
# The end-to-end demo on the embedded default data (called by `make demo` after setup and
# the doctor): generate the sample web crawl, serve it on 127.0.0.1, build a clean dataset
# version with precomputed views, build the image-only and text-only versions from the
# corpus's unimodal lists, show them in the catalog, pretrain the tiny model (CLIP + FILIP +
# FLIP), learn a visual tokenizer, and run DeCLIP's and FLAVA's objectives.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
CORPUS=data/sampleweb
PORT=${LIPFORGE_DEMO_PORT:-8765}

step() { printf '\n== %s\n' "$*"; }

step "1/10 sample web corpus: 2,000 rows of shapes-world images with a real crawl's mess (+ 600 image-only, 600 text-only)"
$PY -m pipelines sample-web --out "$CORPUS" --n 2000 --seed 0 --base-url "http://127.0.0.1:$PORT"

step "2/10 serving it on http://127.0.0.1:$PORT"
$PY -m pipelines serve-web "$CORPUS" --port "$PORT" > data/serve-web.log 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.2; done

step "3/10 build: download (img2dataset on Ray) -> filter -> dedup -> shard -> views"
$PY -m pipelines build configs/demo.yaml

step "4/10 image-only build: download -> image filters -> dedup -> shard (no captions)"
$PY -m pipelines build configs/demo-images.yaml

step "5/10 text-only build: text filters -> <person> -> shard (nothing downloaded)"
$PY -m pipelines build configs/demo-text.yaml

step "6/10 catalog"
$PY -m catalog --root data list
$PY -m catalog --root data show demo@latest

step "7/10 pretraining the tiny model (Ray Train; CLIP + FILIP objectives, FLIP masking)"
# A fresh run name per demo: re-running one name resumes its checkpoint instead.
$PY -m training train configs/train/demo.yaml --set "run.name=demo-$(date +%Y%m%d-%H%M%S)"

step "8/10 visual tokenizer: an 8,192-entry codebook over demo-images' patches (targets of masked image modelling)"
$PY -m training tokenizer build demo-images@latest --root data

step "9/10 DeCLIP: CLIP + SimSiam + MLM + multi-view + nearest-neighbour supervision on the views"
$PY -m training train configs/train/declip.yaml --set "run.name=declip-$(date +%Y%m%d-%H%M%S)"

step "10/10 FLAVA: paired 0.70 / image-only 0.15 / text-only 0.15, global contrastive + MIM + MLM"
$PY -m training train configs/train/flava.yaml --set "run.name=flava-$(date +%Y%m%d-%H%M%S)"

printf '\nDone. Browse the dataset with: %s -m catalog --root data serve  (http://127.0.0.1:8000)\n' "$PY"
