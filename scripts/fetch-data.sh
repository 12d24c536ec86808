#!/usr/bin/env bash
# Fetch the fine-tuning data of issue 16 from package registries and write JSONL splits
# {"id", "text", "label"} under data/ (git-ignored). Never committed.
#
# - Sentence polarity: the Rotten Tomatoes snippets of Hutto & Gilbert (2014), "VADER: A
#   Parsimonious Rule-based Model for Sentiment Analysis of Social Media Text", ICWSM 2014:
#   `movieReviewSnippets_GroundTruth.txt` (id, mean human rating, text; CRLF) inside
#   `additional_resources/hutto_ICWSM_2014.tar.gz` of the PyPI source distribution
#   vaderSentiment==3.3.2. Label by the sign of the rating (ratings of exactly 0 are dropped):
#   "negative" / "positive". Fixed split by sha256 of the snippet id: 80 % train, 10 % dev,
#   10 % test → data/polarity/{train,dev,test}.jsonl.
# - Out-of-domain: the UCI "Sentiment Labelled Sentences" (Kotzias et al., KDD 2015) as shipped in
#   the npm package sentiment@5.0.2, test/fixtures/{amazon,imdb,yelp}.json ({"text", "class"};
#   the trailing empty record dropped) → data/uci/{amazon,imdb,yelp,all}.jsonl.
# - Rule reasoning (when target/release/gradpath exists): `gradpath data rules` with fixed seeds
#   → data/rules/{train,dev,test}.jsonl (depth ≤ 2).
#
# Idempotent: the downloads are checked against pinned sha256 sums and reused; outputs already
# listed in data/SHA256SUMS with matching sums are left alone. Needs python3 (standard library),
# pip and npm (only `pip download` and `npm pack`: nothing is installed).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DATA="${GRADPATH_DATA_DIR:-$ROOT/data}"
DL="$DATA/.downloads"
mkdir -p "$DL"

VADER_TGZ="vaderSentiment-3.3.2.tar.gz"
VADER_SHA="5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9"
SNIPPETS_SHA="c8293b0d942e90e223ea2c0955d969040d1a1be514a978b9af0698940bd13350"
SENT_TGZ="sentiment-5.0.2.tgz"
SENT_SHA="89302eb03d2005d03b214fe65814bb48adb7d3c42c8ca80bdee6a3ecb7e4480f"
UCI_SHA=(
  "amazon bc5eb0cac49fc45987301f1dc2d02cf5ca356ba6c882be179dce77d74e666ed9"
  "imdb 44a7b9082ed732ee2de3c858ea5ee2e99aca34f239a1c4359d3a300bf099bdb5"
  "yelp 9f3f47983f21eeb819380767b74bfa648eca208f156241111454b3e122773ff7"
)

check() { # file sha
  local got
  got="$(sha256sum "$1" | cut -d' ' -f1)"
  if [[ "$got" != "$2" ]]; then
    echo "fetch-data: $1 has sha256 $got, expected $2" >&2
    exit 1
  fi
}

# Complete = every listed file matches, and, once gradpath is built, the rule files are there and
# were written by this build's generator (a first run before `cargo build` skips them; a changed
# generator, seen in the sha256 of a small sample of its output, regenerates them).
GP="$ROOT/target/release/gradpath"
RULES_SPEC="train 12000 seed 1, dev 600 seed 2, test 600 seed 3, depth 2"
rules_fingerprint() { { echo "$RULES_SPEC"; "$GP" data rules --n 24 --depth 2 --seed 1; } | sha256sum | cut -d' ' -f1; }
rules_current() {
  [[ ! -x "$GP" ]] && return 0
  [[ -f "$DATA/rules/GENERATOR" ]] && [[ "$(cat "$DATA/rules/GENERATOR")" == "$(rules_fingerprint)" ]]
}
if [[ -f "$DATA/SHA256SUMS" ]] && (cd "$DATA" && sha256sum --quiet -c SHA256SUMS 2>/dev/null) && rules_current; then
  echo "fetch-data: $DATA is complete (SHA256SUMS match); nothing to do"
  exit 0
fi

if [[ ! -f "$DL/$VADER_TGZ" ]]; then
  pip download --no-deps --no-binary :all: vaderSentiment==3.3.2 -d "$DL" >/dev/null
fi
check "$DL/$VADER_TGZ" "$VADER_SHA"
if [[ ! -f "$DL/$SENT_TGZ" ]]; then
  (cd "$DL" && npm pack sentiment@5.0.2 >/dev/null 2>&1)
fi
check "$DL/$SENT_TGZ" "$SENT_SHA"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
tar xzf "$DL/$VADER_TGZ" -C "$WORK" vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz
tar xzf "$WORK/vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz" -C "$WORK" \
  hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt
SNIPPETS="$WORK/hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt"
check "$SNIPPETS" "$SNIPPETS_SHA"
tar xzf "$DL/$SENT_TGZ" -C "$WORK" package/test/fixtures/amazon.json package/test/fixtures/imdb.json \
  package/test/fixtures/yelp.json
for e in "${UCI_SHA[@]}"; do
  set -- $e
  check "$WORK/package/test/fixtures/$1.json" "$2"
done

python3 - "$SNIPPETS" "$WORK/package/test/fixtures" "$DATA" <<'PY'
import hashlib, json, os, sys

snippets, uci, out = sys.argv[1:4]

def write(path, rows):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    os.replace(tmp, path)

rows, zeros = [], 0
with open(snippets, encoding="utf-8", newline="") as f:
    for line in f.read().split("\r\n"):
        if not line.strip():
            continue
        sid, rating, text = line.split("\t", 2)
        r = float(rating)
        if r == 0:
            zeros += 1
            continue
        rows.append({"id": f"rt-{sid}", "text": text.strip(), "label": "positive" if r > 0 else "negative"})
split = {"train": [], "dev": [], "test": []}
for r in rows:
    h = int(hashlib.sha256(r["id"].encode()).hexdigest(), 16) % 10
    split["train" if h < 8 else "dev" if h == 8 else "test"].append(r)
for k, v in split.items():
    write(f"{out}/polarity/{k}.jsonl", v)
pos = sum(r["label"] == "positive" for r in rows)
print(f"polarity: {len(rows) + zeros} snippets, {zeros} with rating 0 dropped: {pos} positive, "
      f"{len(rows) - pos} negative; train {len(split['train'])}, dev {len(split['dev'])}, test {len(split['test'])}")

every = []
for name in ("amazon", "imdb", "yelp"):
    recs = json.load(open(f"{uci}/{name}.json", encoding="utf-8"))
    kept = [r for r in recs if r.get("text", "").strip() and r.get("class") in (0, 1)]
    out_rows = [{"id": f"{name}-{i}", "text": r["text"].strip(), "label": ["negative", "positive"][r["class"]]}
                for i, r in enumerate(kept)]
    write(f"{out}/uci/{name}.jsonl", out_rows)
    every += out_rows
    print(f"uci/{name}: {len(out_rows)} sentences ({len(recs) - len(kept)} empty record(s) dropped)")
write(f"{out}/uci/all.jsonl", every)
PY

if [[ -x "$GP" ]]; then
  mkdir -p "$DATA/rules"
  "$GP" data rules --n 12000 --depth 2 --seed 1 --out "$DATA/rules/train.jsonl"
  "$GP" data rules --n 600 --depth 2 --seed 2 --out "$DATA/rules/dev.jsonl"
  "$GP" data rules --n 600 --depth 2 --seed 3 --out "$DATA/rules/test.jsonl"
  rules_fingerprint > "$DATA/rules/GENERATOR"
  echo "rules: train 12000, dev 600, test 600 (depth 0..2, seeds 1/2/3)"
else
  echo "fetch-data: $GP not built; skipping data/rules (run cargo build --release, then this script again)"
fi

(cd "$DATA" && find . -name '*.jsonl' -not -path './.downloads/*' | sort | xargs sha256sum > SHA256SUMS)
echo "fetch-data: wrote $DATA (checksums in $DATA/SHA256SUMS)"
