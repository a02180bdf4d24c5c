# Install (from Debian's packages) and start a local PostgreSQL; sets POSTGRES_URL.
# Sourced by .ci/run; also usable by hand: `. .ci/postgres.sh && start_postgres`.

start_postgres() {
    if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
        apt-get update -qq
        apt-get install -y -qq postgresql >/dev/null
    fi
    local version
    version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
    if ! pg_lsclusters -h | grep -q "^$version main"; then
        pg_createcluster "$version" main >/dev/null
    fi
    pg_ctlcluster "$version" main start 2>/dev/null || true
    for _ in $(seq 1 30); do
        pg_isready -q -h 127.0.0.1 && break
        sleep 1
    done
    runuser -u postgres -- psql -q -c "DROP DATABASE IF EXISTS gateway_test" \
        -c "DROP ROLE IF EXISTS gateway" \
        -c "CREATE ROLE gateway LOGIN PASSWORD 'gateway'" \
        -c "CREATE DATABASE gateway_test OWNER gateway"
    export POSTGRES_URL="postgresql://gateway:gateway@127.0.0.1:5432/gateway_test"
}
