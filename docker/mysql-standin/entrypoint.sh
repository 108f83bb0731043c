#!/bin/sh
# mysql:8.4's entrypoint contract on MariaDB: `IMAGE [--server-option ...]` runs the server; on an
# empty /var/lib/mysql it first creates MYSQL_DATABASE and MYSQL_USER (rights on that database
# only, from any host) and sets root's password, with a server that listens on no port meanwhile.
set -eu

case "${1:-}" in
    -*) set -- mariadbd "$@" ;;
esac

sql_quote() { printf "'%s'" "$(printf '%s' "$1" | sed "s/\\\\/\\\\\\\\/g; s/'/''/g")"; }

if [ "${1:-}" = mariadbd ] && [ ! -d /var/lib/mysql/mysql ]; then
    for var in MYSQL_DATABASE MYSQL_USER MYSQL_PASSWORD MYSQL_ROOT_PASSWORD; do
        eval "value=\${$var:-}"
        if [ -z "$value" ]; then
            echo "standin-entrypoint: $var is not set; the first start needs it" >&2
            exit 2
        fi
    done
    mariadb-install-db --datadir=/var/lib/mysql --skip-test-db --auth-root-authentication-method=normal >/dev/null
    sock=/run/mysqld/init.sock
    mariadbd --skip-networking --socket="$sock" &
    init_pid=$!
    tries=0
    until mariadb-admin --socket="$sock" -uroot ping >/dev/null 2>&1; do
        tries=$((tries + 1))
        if [ "$tries" -gt 300 ]; then
            echo "standin-entrypoint: the init server did not answer within 30 s" >&2
            exit 1
        fi
        sleep 0.1
    done
    db=$(printf '%s' "$MYSQL_DATABASE" | sed 's/`/``/g')
    mariadb --socket="$sock" -uroot <<SQL
CREATE DATABASE \`$db\`;
CREATE USER $(sql_quote "$MYSQL_USER")@'%' IDENTIFIED BY $(sql_quote "$MYSQL_PASSWORD");
GRANT ALL PRIVILEGES ON \`$db\`.* TO $(sql_quote "$MYSQL_USER")@'%';
ALTER USER 'root'@'localhost' IDENTIFIED BY $(sql_quote "$MYSQL_ROOT_PASSWORD");
FLUSH PRIVILEGES;
SQL
    kill -TERM "$init_pid"
    wait "$init_pid"
fi

exec "$@"
