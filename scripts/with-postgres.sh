#!/usr/bin/env bash
# Runs a command against a real, throwaway PostgreSQL:
#
#   scripts/with-postgres.sh -- CMD [ARG...]
#
# Creates a fresh cluster in a temp directory, listening on 127.0.0.1 only
# (a free port) and on a unix socket inside that directory, creates the
# database `harpoon_test`, exports
#
#   DATABASE_URL=postgres://harpoon:<random>@127.0.0.1:<port>/harpoon_test
#
# and libpq's PGHOST/PGPORT/PGUSER/PGPASSWORD/PGDATABASE for the same database
# (`harpoon` is the cluster's superuser, so tests may create more databases),
# runs CMD, then stops the cluster and removes the directory, whatever happens.
# Exits with CMD's exit status.
#
# The server binaries are Debian's (/usr/lib/postgresql/<ver>/bin, the newest
# version wins); when none are found the `postgresql` package is installed
# (root only; `apt-get update` once). The package's default cluster is not
# created or started. PostgreSQL refuses to run as root, so as root the
# cluster runs as the `postgres` system user; otherwise as the caller.
# fsync stays on: the cluster is small but durable, like a real one.
#
# If PostgreSQL cannot be installed the script fails, unless
# HARPOON_PG_OPTIONAL=1: then it says so loudly and runs CMD without
# DATABASE_URL.
#
# Env: HARPOON_PG_BINDIR    directory holding initdb/pg_ctl (skips the search)
#      HARPOON_PG_OPTIONAL  1: run CMD without PostgreSQL when it cannot be had
#      HARPOON_PG_KEEP_LOG  1: print the server log at the end even on success
set -euo pipefail

say() { printf 'pg: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

if [ "${1:-}" = "--" ]; then shift; fi
[ "$#" -gt 0 ] || { printf 'usage: %s -- CMD [ARG...]\n' "$0" >&2; exit 64; }

# ---------------------------------------------------------------- binaries
find_bindir() {
  local dir
  if [ -n "${HARPOON_PG_BINDIR:-}" ]; then
    [ -x "${HARPOON_PG_BINDIR}/initdb" ] && [ -x "${HARPOON_PG_BINDIR}/pg_ctl" ] &&
      { printf '%s\n' "${HARPOON_PG_BINDIR}"; return 0; }
    return 1
  fi
  # Debian keeps the server binaries off PATH; the newest version wins.
  dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  if [ -n "${dir}" ] && [ -x "${dir}/initdb" ] && [ -x "${dir}/pg_ctl" ]; then
    printf '%s\n' "${dir}"; return 0
  fi
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dir="$(dirname "$(readlink -f "$(command -v initdb)")")"
    [ -x "${dir}/pg_ctl" ] && { printf '%s\n' "${dir}"; return 0; }
  fi
  return 1
}

install_postgresql() {
  if [ "$(id -u)" -ne 0 ]; then
    say "not root: cannot install the postgresql package"
    return 1
  fi
  command -v apt-get >/dev/null 2>&1 || { say "no apt-get: cannot install postgresql"; return 1; }
  # Only the binaries are wanted: keep the package from creating (and starting)
  # its default cluster on port 5432. postgresql-common reads this drop-in.
  if [ ! -d /etc/postgresql-common ] || [ ! -e /etc/postgresql-common/createcluster.conf ]; then
    mkdir -p /etc/postgresql-common/createcluster.d
    printf '%s\n' "# Written by Harpoon's scripts/with-postgres.sh: binaries only, no default cluster." \
      "create_main_cluster = off" > /etc/postgresql-common/createcluster.d/harpoon-no-main-cluster.conf
  fi
  local t0=${SECONDS}
  local aptlog
  aptlog="$(mktemp)"
  if [ -z "${HARPOON_APT_UPDATED:-}" ]; then
    say "apt-get update"
    apt-get update -qq >"${aptlog}" 2>&1 || {
      cat "${aptlog}" >&2; rm -f "${aptlog}"; say "apt-get update failed"; return 1; }
    export HARPOON_APT_UPDATED=1
  fi
  say "installing the postgresql package (apt-get)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    postgresql postgresql-client >"${aptlog}" 2>&1 || {
      tail -n 30 "${aptlog}" >&2; rm -f "${aptlog}"; say "apt-get install postgresql failed"; return 1; }
  rm -f "${aptlog}"
  say "postgresql installed in $((SECONDS - t0))s"
}

skip_or_fail() {
  local why=$1
  shift
  cat >&2 <<EOF
pg: ################################################################
pg: #                                                              #
pg: #   POSTGRESQL TESTS SKIPPED: PostgreSQL is not available      #
pg: #   and could not be installed (${why})
pg: #   DATABASE_URL is NOT set; tests that need it will skip.     #
pg: #                                                              #
pg: ################################################################
EOF
  if [ "${HARPOON_PG_OPTIONAL:-}" = "1" ]; then
    say "HARPOON_PG_OPTIONAL=1: running the command without PostgreSQL"
    unset DATABASE_URL
    set +e
    "$@"
    exit $?
  fi
  say "failing (set HARPOON_PG_OPTIONAL=1 to run without PostgreSQL)"
  exit 1
}

if ! bindir="$(find_bindir)"; then
  if [ -n "${HARPOON_PG_BINDIR:-}" ]; then
    skip_or_fail "no initdb/pg_ctl in HARPOON_PG_BINDIR=${HARPOON_PG_BINDIR}" "$@"
  fi
  say "initdb/pg_ctl not found"
  install_postgresql || skip_or_fail "installing the postgresql package failed" "$@"
  bindir="$(find_bindir)" || skip_or_fail "installed, yet no initdb/pg_ctl under /usr/lib/postgresql" "$@"
fi
say "server binaries: ${bindir} ($("${bindir}/pg_ctl" --version))"

# ---------------------------------------------------------------- the user
# PostgreSQL refuses to run as root: run it as `postgres` (the package's
# system user), created if the binaries came without it.
as_pg=()
if [ "$(id -u)" -eq 0 ]; then
  pg_user=postgres
  if ! id -u "${pg_user}" >/dev/null 2>&1; then
    say "creating system user ${pg_user}"
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "${pg_user}"
  fi
  if command -v runuser >/dev/null 2>&1; then
    as_pg=(runuser -u "${pg_user}" --)
  else
    as_pg=(setpriv --reuid="${pg_user}" --regid="${pg_user}" --init-groups --)
  fi
else
  pg_user="$(id -un)"
fi
# Runs a server program as ${pg_user}, from a directory it can read.
pg() { (cd "${tmp}" && "${as_pg[@]}" "$@"); }

# ---------------------------------------------------------------- the cluster
tmp="$(mktemp -d "${TMPDIR:-/tmp}/harpoon-pg.XXXXXX")"
data="${tmp}/data"
log="${tmp}/server.log"
started=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "${started}" ]; then
    say "stopping the cluster"
    if ! pg "${bindir}/pg_ctl" -D "${data}" -m fast -w -t 30 stop >/dev/null 2>&1; then
      say "fast stop failed; stopping immediately"
      pg "${bindir}/pg_ctl" -D "${data}" -m immediate -w -t 10 stop >/dev/null 2>&1 || {
        local pid
        pid="$(head -n 1 "${data}/postmaster.pid" 2>/dev/null || true)"
        [ -n "${pid}" ] && kill -KILL "${pid}" 2>/dev/null || true
      }
    fi
  fi
  if [ "${rc}" -ne 0 ] || [ "${HARPOON_PG_KEEP_LOG:-}" = "1" ]; then
    if [ -s "${log}" ]; then
      say "server log (last 30 lines):"
      tail -n 30 "${log}" | sed 's/^/pg:   /' >&2
    fi
  fi
  rm -rf "${tmp}"
  exit "${rc}"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

[ "${pg_user}" = "$(id -un)" ] || chown "${pg_user}:" "${tmp}"
chmod 700 "${tmp}"

password="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
pwfile="${tmp}/pwfile"
printf '%s\n' "${password}" > "${pwfile}"
[ "${pg_user}" = "$(id -un)" ] || chown "${pg_user}:" "${pwfile}"
chmod 600 "${pwfile}"

t0=${SECONDS}
say "initdb in ${data} (user ${pg_user})"
# Socket connections (the private temp dir, reachable by ${pg_user} and root
# only) trust; TCP needs the password.
pg "${bindir}/initdb" -D "${data}" -U harpoon --pwfile="${pwfile}" \
  --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C \
  --no-instructions >"${tmp}/initdb.log" 2>&1 || { cat "${tmp}/initdb.log" >&2; die "initdb failed"; }
rm -f "${pwfile}"

cat >> "${data}/postgresql.conf" <<EOF

# scripts/with-postgres.sh: a throwaway test cluster.
listen_addresses = '127.0.0.1'
unix_socket_directories = '${tmp}'
shared_buffers = 16MB
max_connections = 100
fsync = on
logging_collector = off
EOF

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port=""
for _ in 1 2 3 4 5 6 7 8; do
  candidate=$(( 20000 + (RANDOM * 32768 + RANDOM) % 40000 ))
  port_in_use "${candidate}" && continue
  sed -i '/^port = /d' "${data}/postgresql.conf"
  printf 'port = %s\n' "${candidate}" >> "${data}/postgresql.conf"
  started=1
  rm -f "${log}"
  if pg "${bindir}/pg_ctl" -D "${data}" -l "${log}" -w -t 60 start >/dev/null 2>&1; then
    port="${candidate}"
    break
  fi
  started=""
  # Another process may have taken the port between the check and the bind.
  if grep -q 'could not bind\|Address already in use' "${log}" 2>/dev/null; then
    say "port ${candidate} taken; trying another"
    continue
  fi
  tail -n 30 "${log}" >&2 2>/dev/null || true
  die "the cluster did not start"
done
[ -n "${port}" ] || die "no free port found for the cluster"
say "cluster up on 127.0.0.1:${port} in $((SECONDS - t0))s"

pg "${bindir}/createdb" -h "${tmp}" -p "${port}" -U harpoon harpoon_test ||
  die "createdb harpoon_test failed"

export DATABASE_URL="postgres://harpoon:${password}@127.0.0.1:${port}/harpoon_test"
# libpq's variables name the same database, so plain `psql` (or a caller's
# `psql "$DATABASE_URL"`, expanded before this script ran) reaches it too.
export PGHOST=127.0.0.1 PGPORT="${port}" PGUSER=harpoon PGPASSWORD="${password}" PGDATABASE=harpoon_test
say "DATABASE_URL=postgres://harpoon:***@127.0.0.1:${port}/harpoon_test"
say "running: $*"
set +e
"$@"
rc=$?
set -e
say "command exited with ${rc}"
exit "${rc}"
