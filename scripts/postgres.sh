# Source this file: starts a throwaway PostgreSQL cluster for the tracker tests and exports
# ATO_TEST_POSTGRES_URL; the cluster stops when the sourcing shell exits.  Installs
# PostgreSQL from the distribution's packages when it is missing and we are root.
ato_start_postgres() {
  local pgbin port dir owner
  port="${ATO_PG_PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
  pgbin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
  if [ -z "$pgbin" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "scripts/postgres.sh: installing PostgreSQL (apt-get)" >&2
    (apt-get install -y -qq postgresql >/dev/null 2>&1 ||
      (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq postgresql >/dev/null 2>&1)) || true
    pgbin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
  fi
  if [ -z "$pgbin" ]; then
    echo "scripts/postgres.sh: no PostgreSQL here; its tests will be skipped" >&2
    return 1
  fi
  dir="$(mktemp -d)"
  if [ "$(id -u)" = 0 ]; then owner=postgres; chown postgres "$dir"; else owner="$(id -un)"; fi
  run_as() { if [ "$owner" = "$(id -un)" ]; then bash -c "$1"; else su "$owner" -s /bin/bash -c "$1"; fi; }
  run_as "$pgbin/initdb -D $dir/data -A trust -U postgres >/dev/null" || return 1
  run_as "$pgbin/pg_ctl -D $dir/data -l $dir/log -w start -o '-k $dir -p $port -c listen_addresses=127.0.0.1' >/dev/null" || {
    cat "$dir/log" >&2; return 1; }
  if [ "$owner" = "$(id -un)" ]; then
    trap "$pgbin/pg_ctl -D $dir/data -m fast stop >/dev/null 2>&1 || true" EXIT
  else
    trap "su $owner -s /bin/bash -c '$pgbin/pg_ctl -D $dir/data -m fast stop' >/dev/null 2>&1 || true" EXIT
  fi
  export ATO_TEST_POSTGRES_URL="postgresql://postgres@127.0.0.1:$port/postgres"
  echo "scripts/postgres.sh: PostgreSQL running at $ATO_TEST_POSTGRES_URL" >&2
}
ato_start_postgres || true
