#!/usr/bin/env bash
# First start of the container stack: .env with generated secrets (when there is none), the image,
# the migrations, then every service in the background, and the demo catalog through the ingestion API.
#
#   scripts/dev-setup.sh [--dev] [--no-demo]
#     --dev      add docker-compose.dev.yml (source mounted from ./src, reload on change, debug logs)
#     --no-demo  do not load the demo catalog (TMDB 5000 titles with generated availability)
#
# Safe to run again: an existing .env is kept, migrations are idempotent, `up -d` only recreates what
# changed, and the demo ingest is a no-op once its feeds are consumed.
set -euo pipefail

files=(-f docker-compose.yml)
demo=1
for arg in "$@"; do
  case "$arg" in
    --dev) files+=(-f docker-compose.dev.yml) ;;
    --no-demo) demo=0 ;;
    -h | --help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "dev-setup: unknown argument $arg (try --help)" >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/.."

if docker compose version >/dev/null 2>&1; then
  compose=(docker compose "${files[@]}")
elif command -v docker-compose >/dev/null 2>&1; then
  compose=(docker-compose "${files[@]}")
else
  echo "dev-setup: Docker Compose v2 is needed (the 'docker compose' plugin or 'docker-compose')" >&2
  exit 1
fi

hex_secret() { od -An -tx1 -N32 /dev/urandom | tr -d ' \n'; }
base64url_key() { head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n'; }

if [[ ! -f .env ]]; then
  echo "dev-setup: writing .env from .env.example with generated secrets"
  (
    umask 077
    while IFS= read -r line || [[ -n "$line" ]]; do
      case "$line" in
        POSTGRES_PASSWORD= | REDIS_PASSWORD= | MG_ADMIN_TOKEN= | MG_AUTH__SERVICES_CLIENT_SECRET=)
          printf '%s%s\n' "$line" "$(hex_secret)" ;;
        MG_AUTH__KEY_ENCRYPTION_KEY=)
          printf '%s%s\n' "$line" "$(base64url_key)" ;;
        *) printf '%s\n' "$line" ;;
      esac
    done <.env.example >.env
  )
else
  echo "dev-setup: keeping the existing .env"
fi

echo "dev-setup: building the image"
"${compose[@]}" build

echo "dev-setup: applying migrations"
"${compose[@]}" run --rm migrate

echo "dev-setup: starting the services"
"${compose[@]}" up -d

if [[ "$demo" == 1 ]]; then
  echo "dev-setup: waiting for discovery, SONA and ingestion (first start: up to a few minutes)"
  ready=0
  for _ in $(seq 150); do
    ready=1
    for pair in discovery:8081 sona:8082 ingestion:8085; do
      probe="import urllib.request as r; r.urlopen('http://127.0.0.1:${pair#*:}/health/ready', timeout=4).close()"
      if ! "${compose[@]}" exec -T "${pair%%:*}" python -c "$probe" >/dev/null 2>&1; then
        ready=0
        break
      fi
    done
    [[ "$ready" == 1 ]] && break
    sleep 2
  done
  if [[ "$ready" == 0 ]]; then
    echo "dev-setup: discovery, SONA or ingestion not ready after 5 minutes; see: docker compose logs" >&2
    exit 1
  fi
  echo "dev-setup: loading the demo catalog in the background"
  # Inside the container: the admin token is already in its environment, and no curl is needed here.
  "${compose[@]}" exec -T ingestion python -c '
import json, os, urllib.error, urllib.request
request = urllib.request.Request(
    "http://127.0.0.1:8085/api/v1/admin/ingest",
    data=json.dumps({"source": "demo"}).encode(),
    headers={"Authorization": "Bearer " + os.environ["MG_ADMIN_TOKEN"], "Content-Type": "application/json"},
)
try:
    with urllib.request.urlopen(request, timeout=30) as response:
        print("demo ingest job", json.load(response)["id"], "started")
except urllib.error.HTTPError as error:
    print("demo catalog already loading or loaded" if error.code == 409 else f"demo ingest refused: {error.code} {error.read()[:300]!r}")
'
fi

"${compose[@]}" ps
cat <<'EOF'

Media Gateway is running in containers (ports published on 127.0.0.1):
  gateway :8080  discovery :8081  sona :8082  auth :8083  sync :8084  ingestion :8085  playback :8086  mcp :3000
  curl localhost:8080/health/aggregate
  docker compose logs -f discovery             # or any other service name
  docker compose down                          # stop (add -v to delete the data volumes too)
The admin token is MG_ADMIN_TOKEN in .env.
EOF
