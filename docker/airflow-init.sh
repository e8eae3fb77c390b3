#!/usr/bin/env bash
# One-shot init of the compose stack (service airflow-init): on the first start only,
# generate the Fernet key every Airflow service reads (AIRFLOW__CORE__FERNET_KEY_CMD) and
# write the SimpleAuthManager password file; then migrate Airflow's metadata DB.
# Idempotent: a key or password file that exists is kept.
set -euo pipefail

key_file=/opt/airflow/auth/fernet.key
if [ -s "$key_file" ]; then
  echo "airflow-init: keeping the existing Fernet key $key_file"
else
  mkdir -p "$(dirname "$key_file")"
  (umask 077 && python3 -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())' >"$key_file")
  echo "airflow-init: generated the Fernet key $key_file"
fi

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
    json.dump({user: os.environ["AIRFLOW_ADMIN_PASSWORD"]}, fh)
    fh.write("\n")
PY
  echo "airflow-init: created user '$user' in $pw_file"
fi
