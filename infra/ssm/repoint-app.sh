#!/bin/bash
# Repoints one app server (Magento 2, WordPress/WooCommerce, or any app reading an env
# file) at the active region and database, then restarts its services if anything changed.
#
# Runs as the custom SSM Command document `repoint-app-document.json` (rendered from this
# file). Every document parameter has `interpolationType: ENV_VAR`: SSM checks the value
# against its allowedPattern, then hands it to this script as the environment variable
# SSM_<parameter> and never puts it into the script's text, so bash never parses a value as
# code. The same patterns are checked again below before any value is used, and values are
# only ever expanded quoted, as data. (SSM Agent 3.3.x or later sets those variables; an
# older agent sets none, and the script stops before it changes anything.)
# Idempotent: a second run with the same values changes nothing and restarts nothing. A run
# that changed something but failed before its cache flush, restarts and checks all passed
# leaves a "restart pending" marker, so its retry completes them although nothing is left to
# change. Runs on one server are serialised by a lock, so an alarm-triggered run and a
# parameter-change run (or a retry while the first still runs) never interleave.
#
# Needs bash 4.2 or later (Amazon Linux 2, CentOS 7 and newer) and flock (util-linux).
# Written for 4.2: with `set -u`, bash before 4.4 treats an empty array as unset, so arrays
# that may be empty are only expanded as ${a[@]+"${a[@]}"}, and `-v` is never used on an
# array element (4.3+).
set -euo pipefail
umask 077

if ((BASH_VERSINFO[0] < 4 || (BASH_VERSINFO[0] == 4 && BASH_VERSINFO[1] < 2))); then
  echo "repoint: bash 4.2 or later is required; this is bash $BASH_VERSION" >&2
  exit 1
fi

fail() {
  echo "repoint: $*" >&2
  exit 1
}

# The document's parameters, from the environment SSM sets (interpolationType ENV_VAR).
for name in SSM_appProfile SSM_region SSM_dbHost SSM_dbPort SSM_appRoot SSM_webUser SSM_envFile \
  SSM_regionKeys SSM_dbHostKey SSM_fpmPoolFiles SSM_services; do
  [[ -n ${!name+set} ]] || fail "$name is not set: this script runs as the repoint SSM document, whose parameters SSM Agent 3.3 or later passes as SSM_<parameter> variables"
done
PROFILE=$SSM_appProfile
REGION=$SSM_region
DB_HOST=$SSM_dbHost
DB_PORT=$SSM_dbPort
APP_ROOT=$SSM_appRoot
WEB_USER=$SSM_webUser
ENV_FILE=$SSM_envFile
REGION_KEYS=$SSM_regionKeys
DB_HOST_KEY=$SSM_dbHostKey
FPM_POOL_FILES=$SSM_fpmPoolFiles
SERVICES=$SSM_services

check() {
  [[ $2 =~ $3 ]] || fail "invalid $1: $(printf '%q' "$2")"
}

check appProfile "$PROFILE" '^(magento|wordpress|envfile)$'
check region "$REGION" '^[a-z]+(-[a-z]+){1,3}-[0-9]{1,2}$'
# A host name: dot-separated labels of letters, digits and inner hyphens (no empty label),
# at most 253 characters (the length SSM's pattern cannot express is checked here).
check dbHost "$DB_HOST" '^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*)?$'
(( ${#DB_HOST} <= 253 )) || fail "invalid dbHost: longer than 253 characters"
check dbPort "$DB_PORT" '^([0-9]{1,5})?$'
check appRoot "$APP_ROOT" '^/[A-Za-z0-9._/-]{0,200}$'
check webUser "$WEB_USER" '^[a-z_][a-z0-9_-]{0,31}$'
check envFile "$ENV_FILE" '^(/[A-Za-z0-9._/-]{1,200})?$'
check regionKeys "$REGION_KEYS" '^([A-Z_][A-Z0-9_]{0,63}(,[A-Z_][A-Z0-9_]{0,63})*)?$'
check dbHostKey "$DB_HOST_KEY" '^([A-Z_][A-Z0-9_]{0,63})?$'
check fpmPoolFiles "$FPM_POOL_FILES" '^(/[A-Za-z0-9._/-]{1,200}(,/[A-Za-z0-9._/-]{1,200})*)?$'
check services "$SERVICES" '^([A-Za-z0-9@._-]{1,100}(,[A-Za-z0-9@._-]{1,100})*)?$'
for path in "$APP_ROOT" "$ENV_FILE" "$FPM_POOL_FILES"; do
  [[ $path != *..* ]] || fail "paths must not contain '..': $path"
done
[[ $PROFILE != envfile || -n $ENV_FILE ]] || fail "the envfile profile needs envFile"

# What the script owns on the server: the lock and the restart-pending marker. The two
# REPOINT_* variables exist for tests; SSM sets neither, so the defaults apply.
STATE_DIR=${REPOINT_STATE_DIR:-/var/lib/shop-failover-repoint}
LOCK_WAIT=${REPOINT_LOCK_WAIT_SECONDS:-300}
[[ $STATE_DIR =~ ^/[A-Za-z0-9._/-]{1,200}$ && $STATE_DIR != *..* ]] || fail "invalid REPOINT_STATE_DIR: $(printf '%q' "$STATE_DIR")"
[[ $LOCK_WAIT =~ ^[0-9]{1,4}$ ]] || fail "invalid REPOINT_LOCK_WAIT_SECONDS: $(printf '%q' "$LOCK_WAIT")"
PENDING_FILE=$STATE_DIR/restart-pending

DB_ADDRESS=$DB_HOST
if [[ -n $DB_HOST && -n $DB_PORT && $DB_PORT != 3306 ]]; then
  DB_ADDRESS="$DB_HOST:$DB_PORT"
fi
CHANGED=()
RESTARTED=()
RESUMED=()

# The KEY=value settings every env file and pool file must end up with.
declare -A WANT=()
region_keys=()
IFS=',' read -ra region_keys <<< "$REGION_KEYS"
for key in ${region_keys[@]+"${region_keys[@]}"}; do
  WANT[$key]=$REGION
done
if [[ -n $DB_HOST && -n $DB_HOST_KEY ]]; then
  WANT[$DB_HOST_KEY]=$DB_ADDRESS
fi
WANT_KEYS=()
if ((${#WANT[@]})); then
  mapfile -t WANT_KEYS < <(printf '%s\n' "${!WANT[@]}" | LC_ALL=C sort)
fi

# One run at a time on this server: everything below reads, rewrites and restarts.
command -v flock > /dev/null || fail "flock (util-linux) is required"
mkdir -p -- "$STATE_DIR" || fail "cannot create $STATE_DIR"
exec 9>> "$STATE_DIR/lock"
flock -w "$LOCK_WAIT" 9 \
  || fail "another repoint run still holds $STATE_DIR/lock after ${LOCK_WAIT}s; nothing was changed, retry when it has finished"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)

# Steps an earlier run left undone (it changed something, then failed).
FLUSH_PENDING=0
RESTART_PENDING=0
if [[ -f $PENDING_FILE ]]; then
  RESTART_PENDING=1
  RESUMED+=(restart)
  if grep -qx -- cache-flush "$PENDING_FILE"; then
    FLUSH_PENDING=1
    RESUMED+=(cache-flush)
  fi
fi

# Records, before a change is made, what it will still need (the restarts and, for
# setup:config:set, the Magento cache flush), so that if anything below fails the retry does
# them although it finds nothing left to change. Cleared only when all have passed.
mark_pending() {
  local tmp
  if [[ ${1:-} == cache-flush ]]; then
    FLUSH_PENDING=1
  fi
  RESTART_PENDING=1
  tmp=$(mktemp "$STATE_DIR/.restart-pending.XXXXXX")
  echo restart > "$tmp"
  if ((FLUSH_PENDING)); then
    echo cache-flush >> "$tmp"
  fi
  mv -f -- "$tmp" "$PENDING_FILE"
}

# Puts TMP in place of FILE unless identical: timestamped backup, mode and owner kept,
# atomic rename in the same directory.
install_if_changed() {
  local file=$1 tmp=$2
  if cmp -s -- "$tmp" "$file"; then
    rm -f -- "$tmp"
    return 0
  fi
  mark_pending
  cp -p -- "$file" "$file.bak.$STAMP"
  chmod --reference="$file" -- "$tmp"
  chown --reference="$file" -- "$tmp" 2>/dev/null || true
  mv -f -- "$tmp" "$file"
  CHANGED+=("$file")
}

# Rewrites KEY=value (or `export KEY=value`) lines; other lines are kept as they are,
# missing keys are added at the end.
rewrite_env_file() {
  local file=$1 tmp line key
  local -A seen=()
  [[ -f $file ]] || fail "env file $file not found"
  tmp=$(mktemp "$(dirname -- "$file")/.repoint.XXXXXX")
  while IFS= read -r line || [[ -n $line ]]; do
    if [[ $line =~ ^([[:space:]]*(export[[:space:]]+)?)([A-Za-z_][A-Za-z0-9_]*)= ]]; then
      key=${BASH_REMATCH[3]}
      if [[ -n ${WANT[$key]+set} ]]; then
        printf '%s%s=%s\n' "${BASH_REMATCH[1]}" "$key" "${WANT[$key]}" >> "$tmp"
        seen[$key]=1
        continue
      fi
    fi
    printf '%s\n' "$line" >> "$tmp"
  done < "$file"
  for key in ${WANT_KEYS[@]+"${WANT_KEYS[@]}"}; do
    if [[ -n $key && -z ${seen[$key]+set} ]]; then
      printf '%s=%s\n' "$key" "${WANT[$key]}" >> "$tmp"
    fi
  done
  install_if_changed "$file" "$tmp"
}

# Rewrites `env[KEY] = value` lines of a PHP-FPM pool file the same way.
rewrite_fpm_pool() {
  local file=$1 tmp line key
  local -A seen=()
  [[ -f $file ]] || fail "PHP-FPM pool file $file not found"
  tmp=$(mktemp "$(dirname -- "$file")/.repoint.XXXXXX")
  while IFS= read -r line || [[ -n $line ]]; do
    if [[ $line =~ ^[[:space:]]*env\[([A-Za-z_][A-Za-z0-9_]*)\][[:space:]]*= ]]; then
      key=${BASH_REMATCH[1]}
      if [[ -n ${WANT[$key]+set} ]]; then
        printf 'env[%s] = %s\n' "$key" "${WANT[$key]}" >> "$tmp"
        seen[$key]=1
        continue
      fi
    fi
    printf '%s\n' "$line" >> "$tmp"
  done < "$file"
  for key in ${WANT_KEYS[@]+"${WANT_KEYS[@]}"}; do
    if [[ -n $key && -z ${seen[$key]+set} ]]; then
      printf 'env[%s] = %s\n' "$key" "${WANT[$key]}" >> "$tmp"
    fi
  done
  install_if_changed "$file" "$tmp"
}

# Magento 2 keeps the database host in app/etc/env.php; setup:config:set rewrites it.
repoint_magento() {
  [[ -n $DB_HOST ]] || return 0
  local env_php="$APP_ROOT/app/etc/env.php"
  [[ -x $APP_ROOT/bin/magento ]] || fail "$APP_ROOT/bin/magento not found"
  [[ -f $env_php ]] || fail "$env_php not found"
  if grep -Fq -- "'host' => '$DB_ADDRESS'" "$env_php"; then
    return 0
  fi
  mark_pending cache-flush
  (cd -- "$APP_ROOT" && runuser -u "$WEB_USER" -- ./bin/magento setup:config:set --db-host="$DB_ADDRESS" --no-interaction) 9>&- \
    || fail "bin/magento setup:config:set failed"
  CHANGED+=("magento:db-host")
}

# After setup:config:set (now or in the run that failed after it) the cache must be flushed.
flush_magento_cache() {
  [[ -x $APP_ROOT/bin/magento ]] || fail "$APP_ROOT/bin/magento not found"
  (cd -- "$APP_ROOT" && runuser -u "$WEB_USER" -- ./bin/magento cache:flush) 9>&- || fail "bin/magento cache:flush failed"
}

# WordPress keeps DB_HOST in wp-config.php; WP-CLI reads and writes it.
repoint_wordpress() {
  [[ -n $DB_HOST ]] || return 0
  local current
  current=$(runuser -u "$WEB_USER" -- wp config get DB_HOST --path="$APP_ROOT" 9>&-) || fail "wp config get DB_HOST failed in $APP_ROOT"
  if [[ $current == "$DB_ADDRESS" ]]; then
    return 0
  fi
  mark_pending
  runuser -u "$WEB_USER" -- wp config set DB_HOST "$DB_ADDRESS" --path="$APP_ROOT" --quiet 9>&- || fail "wp config set DB_HOST failed"
  CHANGED+=("wordpress:DB_HOST")
}

case $PROFILE in
  magento) repoint_magento ;;
  wordpress) repoint_wordpress ;;
  envfile) ;;
esac
if [[ -n $ENV_FILE ]]; then
  rewrite_env_file "$ENV_FILE"
fi
pool_files=()
IFS=',' read -ra pool_files <<< "$FPM_POOL_FILES"
for pool in ${pool_files[@]+"${pool_files[@]}"}; do
  rewrite_fpm_pool "$pool"
done

# Only when something changed, now or in an earlier run that failed before finishing.
services=()
IFS=',' read -ra services <<< "$SERVICES"
if ((FLUSH_PENDING)) && [[ $PROFILE == magento ]]; then
  flush_magento_cache
fi
if ((RESTART_PENDING)); then
  for service in ${services[@]+"${services[@]}"}; do
    systemctl restart -- "$service" || fail "systemctl restart $service failed"
    RESTARTED+=("$service")
  done
fi
for service in ${services[@]+"${services[@]}"}; do
  systemctl is-active --quiet -- "$service" || fail "service $service is not active"
done
rm -f -- "$PENDING_FILE"

SUMMARY="repoint: profile=$PROFILE region=$REGION db=${DB_ADDRESS:-unchanged} changed=${CHANGED[*]:-none} restarted=${RESTARTED[*]:-none}"
if ((${#RESUMED[@]})); then
  SUMMARY+=" resumed=${RESUMED[*]}"
fi
echo "$SUMMARY"
