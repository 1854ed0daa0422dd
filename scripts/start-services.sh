#!/usr/bin/env bash
# Start MariaDB, Redis and RabbitMQ on this machine if they are not already listening, and wait
# until each answers. Uses the machines' own start commands; needs root for the system services.
set -euo pipefail

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() {
  local name=$1 port=$2 seconds=${3:-60}
  for _ in $(seq "$seconds"); do
    if listening "$port"; then return 0; fi
    sleep 1
  done
  echo "error: $name did not start listening on 127.0.0.1:$port within ${seconds}s" >&2
  exit 1
}

need() {
  if ! command -v "$1" >/dev/null 2>&1 && [ ! -x "$1" ]; then
    echo "error: $2 is not installed ($1 not found); install it from Debian's packages" >&2
    exit 1
  fi
}

if ! listening 3306; then
  need /usr/sbin/mariadbd "MariaDB (mariadb-server)"
  echo "Starting MariaDB"
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  wait_for MariaDB 3306
fi
until mysqladmin --silent ping >/dev/null 2>&1 || mysqladmin -h127.0.0.1 -uroot --silent ping >/dev/null 2>&1; do
  sleep 1
done

if ! listening 6379; then
  need redis-server "Redis (redis-server)"
  echo "Starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_for Redis 6379
fi

if ! listening 5672; then
  need rabbitmq-server "RabbitMQ (rabbitmq-server)"
  echo "Starting RabbitMQ"
  rabbitmq-server -detached
  wait_for RabbitMQ 5672 120
fi
