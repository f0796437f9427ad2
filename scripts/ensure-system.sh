#!/usr/bin/env bash
# Install the Debian packages Brygga's run and test need, and start the loopback services tests use.
# Idempotent; needs root (or sudo) only when something is missing.
set -euo pipefail

need_pkgs=()
for pkg in "$@"; do  # extra packages a caller asks for (make bench-peers: ejabberd), when missing
  dpkg -s "$pkg" >/dev/null 2>&1 || need_pkgs+=("$pkg")
done
command -v node >/dev/null || need_pkgs+=(nodejs npm)
[ -x /usr/lib/chromium/chromium ] || need_pkgs+=(chromium)
command -v turnserver >/dev/null || need_pkgs+=(coturn)
command -v psql >/dev/null || need_pkgs+=(postgresql postgresql-contrib)
command -v redis-server >/dev/null || need_pkgs+=(redis-server)
command -v ip >/dev/null || need_pkgs+=(iproute2)
command -v nginx >/dev/null || need_pkgs+=(nginx-light)  # TLS front end of deploy/local-cluster
command -v sqlite3 >/dev/null || need_pkgs+=(sqlite3)    # online backups (docs/operations.md)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_pkgs+=(python3-venv)

sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)

if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "Installing Debian packages: ${need_pkgs[*]}"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

# PostgreSQL and Redis on loopback (tests and the multi-node mode use them).
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  if ls /etc/postgresql >/dev/null 2>&1; then
    "${sudo_cmd[@]}" pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start || true
  fi
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  "${sudo_cmd[@]}" mkdir -p /var/lib/redis /var/log/redis
  "${sudo_cmd[@]}" redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
fi
