#!/usr/bin/env bash
# Install (Debian's package, if missing) and start a PostgreSQL server on 127.0.0.1:5432 with a
# role and database for legato's store tests:
#   postgresql://legato:legato@127.0.0.1:5432/legato_test
# Idempotent: run it again and it only checks. Needs root or sudo for apt and for the cluster.
set -euo pipefail

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v pg_lsclusters >/dev/null 2>&1; then
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq postgresql >/dev/null
fi

cluster="$(pg_lsclusters --no-header | head -n 1)"
if [ -z "$cluster" ]; then
    version="$(ls /usr/lib/postgresql | sort -V | tail -n 1)"
    as_root pg_createcluster "$version" main >/dev/null
    cluster="$(pg_lsclusters --no-header | head -n 1)"
fi
read -r version name port status _ <<<"$cluster"
if [ "$status" != "online" ]; then
    as_root pg_ctlcluster "$version" "$name" start
fi

psql_admin() { as_root su postgres -c "psql -p $port -v ON_ERROR_STOP=1 -qtA $*"; }
if [ "$(psql_admin "-c \"SELECT 1 FROM pg_roles WHERE rolname = 'legato'\"")" != "1" ]; then
    psql_admin "-c \"CREATE ROLE legato LOGIN PASSWORD 'legato' CREATEDB\""
fi
if [ "$(psql_admin "-c \"SELECT 1 FROM pg_database WHERE datname = 'legato_test'\"")" != "1" ]; then
    psql_admin "-c \"CREATE DATABASE legato_test OWNER legato\""
fi
echo "PostgreSQL $version ($name) is up on 127.0.0.1:$port; database legato_test, role legato"
