#!/bin/sh
# Runs once, when the app-db volume is first initialised (the postgres image runs every
# script of /docker-entrypoint-initdb.d as the database superuser). It makes what a team
# already has before Keyturn arrives: a database "orders" and the group role "app" that
# owns its objects, and the least-privileged admin role Keyturn rotates with (see the
# README, "PostgreSQL: what Keyturn creates and the privileges it needs").
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v admin_password="$APP_DB_ADMIN_PASSWORD" <<'SQL'
CREATE ROLE app NOLOGIN;
CREATE DATABASE orders OWNER app;
CREATE ROLE keyturn_admin LOGIN CREATEROLE PASSWORD :'admin_password';
GRANT pg_signal_backend TO keyturn_admin;   -- terminate_sessions: end the revoked login's sessions
GRANT pg_read_all_stats TO keyturn_admin;   -- the revoke gate: see who still uses the old login
-- PostgreSQL 16 and later: CREATEROLE reaches only roles the admin holds WITH ADMIN
-- OPTION (on 15 it reaches every non-superuser role, and this syntax does not exist).
SELECT current_setting('server_version_num')::int >= 160000 AS pg16 \gset
\if :pg16
GRANT app TO keyturn_admin WITH ADMIN OPTION, INHERIT FALSE, SET FALSE;
\endif
SQL
