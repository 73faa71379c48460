#!/usr/bin/env bash
# Entrypoint of the Moonwatch image: derive the same defaults the local launcher derives
# (plugins/moonwatch/stack/), then run the container's command.
set -euo pipefail

# docker-compose.yml passes every optional setting as `${NAME:-}`; an empty value would override
# the default in moonwatch.settings.Settings (and an empty MOONWATCH_SYMBOLS is invalid), so
# unset the empty ones.
while IFS= read -r name; do
    case "$name" in
        MOONWATCH_* | CMC_*)
            if [[ -z "${!name}" ]]; then
                unset "$name"
            fi
            ;;
    esac
done < <(compgen -e)

# No CoinMarketCap key: the offline simulator (the `simulator` service) is the source, for
# quotes, listings and FX rates alike, exactly as in local mode.
simulator_url="http://simulator:18600"
if [[ -z "${CMC_API_KEY:-}" ]]; then
    export CMC_BASE_URL="${CMC_BASE_URL:-$simulator_url}"
    export MOONWATCH_FX_BASE_URL="${MOONWATCH_FX_BASE_URL:-$simulator_url/frankfurter}"
fi

# Airflow's containers (those given its metadata database) get Airflow's configuration from the
# function the local launcher uses, so the two cannot drift; only the container's own facts
# (home, listen address, the api-server's name on the compose network) are given here.
if [[ -n "${MOONWATCH_AIRFLOW_DB_URL:-}" ]]; then
    # Assigned first: `eval "$(cmd)"` would hide a failing cmd from `set -e`.
    airflow_exports="$(python -m moonwatch.stack.airflow env --home "${AIRFLOW_HOME:-/opt/airflow}" \
        --listen 0.0.0.0:8080 --execution-api-url http://airflow-api-server:8080/execution/)"
    eval "$airflow_exports"
    unset airflow_exports MOONWATCH_AIRFLOW_SECRET_KEY
fi

# Airflow's simple auth manager reads the admin password from a JSON file; write it (0600) from
# the environment (only the api-server gets MOONWATCH_AIRFLOW_ADMIN_PASSWORD).
passwords_file="${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:-}"
if [[ -n "${MOONWATCH_AIRFLOW_ADMIN_PASSWORD:-}" && -n "$passwords_file" ]]; then
    (
        umask 077
        python - "$passwords_file" <<'PY'
import json
import os
import sys

with open(sys.argv[1], "w") as f:
    json.dump({"admin": os.environ["MOONWATCH_AIRFLOW_ADMIN_PASSWORD"]}, f)
PY
    )
    unset MOONWATCH_AIRFLOW_ADMIN_PASSWORD
fi

exec "$@"
