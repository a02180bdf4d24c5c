# Install (from Debian's packages) and start a local PostgreSQL; sets POSTGRES_URL.
# Sourced by .ci/run; also usable by hand: `. .ci/postgres.sh && start_postgres`, then
# `stop_postgres` stops the cluster if start_postgres started it.

_postgres_started=""

start_postgres() {
    if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
        apt-get update -qq
        apt-get install -y -qq postgresql >/dev/null || return 1
    fi
    local version
    version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
    if ! pg_lsclusters -h | grep -q "^$version main"; then
        pg_createcluster "$version" main >/dev/null || return 1
    fi
    if ! pg_lsclusters -h | grep -q "^$version main .* online"; then
        pg_ctlcluster "$version" main start || return 1
        _postgres_started="$version"
    fi
    local ready=""
    for _ in $(seq 1 60); do
        pg_isready -q -h 127.0.0.1 && { ready=1; break; }
        sleep 1
    done
    [ -n "$ready" ] || { echo "PostgreSQL did not become ready in 60 s" >&2; return 1; }
    runuser -u postgres -- psql -q -c "DROP DATABASE IF EXISTS gateway_test" \
        -c "DROP ROLE IF EXISTS gateway" \
        -c "CREATE ROLE gateway LOGIN PASSWORD 'gateway'" \
        -c "CREATE DATABASE gateway_test OWNER gateway" || return 1
    export POSTGRES_URL="postgresql://gateway:gateway@127.0.0.1:5432/gateway_test"
}

stop_postgres() {
    if [ -n "$_postgres_started" ]; then
        pg_ctlcluster "$_postgres_started" main stop -m fast || true
        _postgres_started=""
    fi
}
