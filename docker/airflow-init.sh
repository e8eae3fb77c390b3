#!/usr/bin/env bash
# One-shot init of the compose stack (service airflow-init): migrate Airflow's
# metadata DB and, on the first start only, write the SimpleAuthManager password
# file so the admin can log in with a known password. Idempotent.
set -euo pipefail

airflow db migrate

pw_file="${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:?set in docker-compose.yml}"
user="${AIRFLOW_ADMIN_USER:-admin}"
if [ -s "$pw_file" ]; then
  echo "airflow-init: keeping the existing password file $pw_file"
else
  mkdir -p "$(dirname "$pw_file")"
  python3 - "$pw_file" "$user" <<'PY'
import json, os, sys

path, user = sys.argv[1], sys.argv[2]
with open(path, "w") as fh:
    json.dump({user: os.environ.get("AIRFLOW_ADMIN_PASSWORD", "admin")}, fh)
    fh.write("\n")
PY
  echo "airflow-init: created user '$user' in $pw_file"
fi
