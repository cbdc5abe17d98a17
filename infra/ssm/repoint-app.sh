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
for name in SSM_appProfile SSM_region SSM_serverRegion SSM_dbHost SSM_dbPort SSM_cacheHost SSM_cacheHosts \
  SSM_appRoot SSM_webUser SSM_envFile SSM_regionKeys SSM_dbHostKey SSM_cacheHostKey SSM_fpmPoolFiles SSM_services \
  SSM_cronTimers SSM_maintenance SSM_maintenanceKey SSM_executionTimeout; do
  [[ -n ${!name+set} ]] || fail "$name is not set: this script runs as the repoint SSM document, whose parameters SSM Agent 3.3 or later passes as SSM_<parameter> variables"
done
PROFILE=$SSM_appProfile
REGION=$SSM_region
SERVER_REGION=$SSM_serverRegion
DB_HOST=$SSM_dbHost
DB_PORT=$SSM_dbPort
CACHE_HOST=$SSM_cacheHost
CACHE_HOSTS=$SSM_cacheHosts
APP_ROOT=$SSM_appRoot
WEB_USER=$SSM_webUser
ENV_FILE=$SSM_envFile
REGION_KEYS=$SSM_regionKeys
DB_HOST_KEY=$SSM_dbHostKey
CACHE_HOST_KEY=$SSM_cacheHostKey
FPM_POOL_FILES=$SSM_fpmPoolFiles
SERVICES=$SSM_services
CRON_TIMERS=$SSM_cronTimers
MAINTENANCE=$SSM_maintenance
MAINTENANCE_KEY=$SSM_maintenanceKey
EXECUTION_TIMEOUT=$SSM_executionTimeout

check() {
  [[ $2 =~ $3 ]] || fail "invalid $1: $(printf '%q' "$2")"
}

check appProfile "$PROFILE" '^(magento|wordpress|envfile)$'
check region "$REGION" '^[a-z]+(-[a-z]+){1,3}-[0-9]{1,2}$'
check serverRegion "$SERVER_REGION" '^([a-z]+(-[a-z]+){1,3}-[0-9]{1,2})?$'
# A host name: dot-separated labels of letters, digits and inner hyphens (no empty label),
# at most 253 characters (the length SSM's pattern cannot express is checked here).
check dbHost "$DB_HOST" '^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*)?$'
(( ${#DB_HOST} <= 253 )) || fail "invalid dbHost: longer than 253 characters"
check dbPort "$DB_PORT" '^([0-9]{1,5})?$'
check cacheHost "$CACHE_HOST" '^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*)?$'
(( ${#CACHE_HOST} <= 253 )) || fail "invalid cacheHost: longer than 253 characters"
check cacheHosts "$CACHE_HOSTS" '^([a-z]+(-[a-z]+){1,3}-[0-9]{1,2}=[A-Za-z0-9.-]{1,253}(,[a-z]+(-[a-z]+){1,3}-[0-9]{1,2}=[A-Za-z0-9.-]{1,253})*)?$'
check appRoot "$APP_ROOT" '^/[A-Za-z0-9._/-]{0,200}$'
check webUser "$WEB_USER" '^([a-z_][a-z0-9_-]{0,31})?$'
check envFile "$ENV_FILE" '^(/[A-Za-z0-9._/-]{1,200})?$'
check regionKeys "$REGION_KEYS" '^([A-Z_][A-Z0-9_]{0,63}(,[A-Z_][A-Z0-9_]{0,63})*)?$'
check dbHostKey "$DB_HOST_KEY" '^([A-Z_][A-Z0-9_]{0,63})?$'
check cacheHostKey "$CACHE_HOST_KEY" '^([A-Z_][A-Z0-9_]{0,63})?$'
check fpmPoolFiles "$FPM_POOL_FILES" '^(/[A-Za-z0-9._/-]{1,200}(,/[A-Za-z0-9._/-]{1,200})*)?$'
check services "$SERVICES" '^([A-Za-z0-9@._-]{1,100}(,[A-Za-z0-9@._-]{1,100})*)?$'
check cronTimers "$CRON_TIMERS" '^([A-Za-z0-9@._-]{1,100}\.timer(,[A-Za-z0-9@._-]{1,100}\.timer)*)?$'
check maintenance "$MAINTENANCE" '^(on|off)?$'
check maintenanceKey "$MAINTENANCE_KEY" '^([A-Z_][A-Z0-9_]{0,63})?$'
check executionTimeout "$EXECUTION_TIMEOUT" '^[1-9][0-9]{1,3}$'
for path in "$APP_ROOT" "$ENV_FILE" "$FPM_POOL_FILES"; do
  [[ $path != *..* ]] || fail "paths must not contain '..': $path"
done
[[ $PROFILE != envfile || -n $ENV_FILE ]] || fail "the envfile profile needs envFile"
# cacheHosts (region=host, as the convergence associations pass it, which cannot look a
# region up) names the host of the active region when cacheHost does not.
if [[ -z $CACHE_HOST && -n $CACHE_HOSTS ]]; then
  IFS=',' read -ra cache_entries <<< "$CACHE_HOSTS"
  for entry in ${cache_entries[@]+"${cache_entries[@]}"}; do
    [[ ${entry%%=*} == "$REGION" ]] && CACHE_HOST=${entry#*=}
  done
  [[ -n $CACHE_HOST ]] || fail "cacheHosts names no cache host for the active region $REGION: $CACHE_HOSTS"
  check cacheHosts "$CACHE_HOST" '^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*)$'
fi

# What the script owns on the server: the lock and the restart-pending marker; and where the
# WordPress cron entry goes. The REPOINT_* variables exist for tests; SSM sets none of them.
# A run waits for the lock at most half its execution timeout (SSM kills it at the timeout),
# so it either gets the lock with half its time left for the work or fails saying why.
STATE_DIR=${REPOINT_STATE_DIR:-/var/lib/shop-failover-repoint}
CRON_DIR=${REPOINT_CRON_DIR:-/etc/cron.d}
LOCK_WAIT=${REPOINT_LOCK_WAIT_SECONDS:-$((EXECUTION_TIMEOUT / 2))}
[[ $STATE_DIR =~ ^/[A-Za-z0-9._/-]{1,200}$ && $STATE_DIR != *..* ]] || fail "invalid REPOINT_STATE_DIR: $(printf '%q' "$STATE_DIR")"
[[ $CRON_DIR =~ ^/[A-Za-z0-9._/-]{1,200}$ && $CRON_DIR != *..* ]] || fail "invalid REPOINT_CRON_DIR: $(printf '%q' "$CRON_DIR")"
[[ $LOCK_WAIT =~ ^[0-9]{1,4}$ ]] || fail "invalid REPOINT_LOCK_WAIT_SECONDS: $(printf '%q' "$LOCK_WAIT")"
PENDING_FILE=$STATE_DIR/restart-pending
WP_CRON_FILE=$CRON_DIR/shop-failover-wp-cron

DB_ADDRESS=$DB_HOST
if [[ -n $DB_HOST && -n $DB_PORT && $DB_PORT != 3306 ]]; then
  DB_ADDRESS="$DB_HOST:$DB_PORT"
fi
# The shop's cron runs on the servers of the active region only (two regions running it
# would process every order twice); with no serverRegion the cron is left alone.
CRON_WANT=
if [[ -n $SERVER_REGION ]]; then
  if [[ $SERVER_REGION == "$REGION" ]]; then CRON_WANT=on; else CRON_WANT=off; fi
fi
CRON_STATE=unchanged
CHANGED=()
CHANGED_FILES=()
RESTARTED=()
RELOADED=()
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
if [[ -n $CACHE_HOST && -n $CACHE_HOST_KEY ]]; then
  WANT[$CACHE_HOST_KEY]=$CACHE_HOST
fi
if [[ -n $MAINTENANCE && -n $MAINTENANCE_KEY ]]; then
  if [[ $MAINTENANCE == on ]]; then WANT[$MAINTENANCE_KEY]=1; else WANT[$MAINTENANCE_KEY]=0; fi
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

# The app's CLI runs as the owner of its configuration (Magento's file-system owner, which is
# often not the web server's user), unless webUser names one.
if [[ -z $WEB_USER && $PROFILE != envfile ]]; then
  owner_file=$APP_ROOT/wp-config.php
  [[ $PROFILE == magento ]] && owner_file=$APP_ROOT/app/etc/env.php
  [[ -f $owner_file ]] || fail "$owner_file not found"
  WEB_USER=$(stat -c %U -- "$owner_file")
  [[ $WEB_USER != UNKNOWN && $WEB_USER =~ ^[a-z_][a-z0-9_-]{0,31}$ ]] \
    || fail "the owner of $owner_file has no usable user name ($WEB_USER); set webUser"
fi
as_web_user() {
  runuser -u "$WEB_USER" -- "$@" 9>&-
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
  CHANGED_FILES+=("$file")
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

# Magento's app/etc/env.php, read by PHP itself (it is PHP code): the exact keys this script
# owns, one `name=value` line each, empty when absent.
READ_ENV_PHP=$(cat << 'PHP'
$config = include getenv('REPOINT_ENV_PHP');
if (!is_array($config)) {
    fwrite(STDERR, "app/etc/env.php does not return an array\n");
    exit(2);
}
$paths = [
    'db_host' => ['db', 'connection', 'default', 'host'],
    'session_save' => ['session', 'save'],
    'session_redis_host' => ['session', 'redis', 'host'],
    'cache_backend' => ['cache', 'frontend', 'default', 'backend'],
    'cache_server' => ['cache', 'frontend', 'default', 'backend_options', 'server'],
    'page_backend' => ['cache', 'frontend', 'page_cache', 'backend'],
    'page_server' => ['cache', 'frontend', 'page_cache', 'backend_options', 'server'],
];
foreach ($paths as $name => $path) {
    $value = $config;
    foreach ($path as $key) {
        $value = (is_array($value) && array_key_exists($key, $value)) ? $value[$key] : '';
    }
    echo $name, '=', is_scalar($value) ? preg_replace('/[\r\n]/', ' ', (string) $value) : '', "\n";
}
PHP
)

# Magento 2 keeps the database and Redis hosts in app/etc/env.php; setup:config:set rewrites
# them. Only the parts that differ are set, and a Redis part only where Redis is configured.
repoint_magento() {
  local env_php="$APP_ROOT/app/etc/env.php" current name value options=()
  local -A now=()
  [[ -n $DB_HOST || -n $CACHE_HOST ]] || return 0
  [[ -x $APP_ROOT/bin/magento ]] || fail "$APP_ROOT/bin/magento not found"
  [[ -f $env_php ]] || fail "$env_php not found"
  command -v php > /dev/null || fail "php (the PHP CLI) is required to read $env_php"
  current=$(REPOINT_ENV_PHP=$env_php php -d display_errors=stderr -r "$READ_ENV_PHP" 9>&-) || fail "php could not read $env_php"
  while IFS='=' read -r name value; do
    [[ -n $name ]] && now[$name]=$value
  done <<< "$current"
  if [[ -n $DB_HOST && ${now[db_host]-} != "$DB_ADDRESS" ]]; then
    options+=("--db-host=$DB_ADDRESS")
    CHANGED+=(magento:db-host)
  fi
  if [[ -n $CACHE_HOST ]]; then
    if [[ ${now[session_save]-} == redis && ${now[session_redis_host]-} != "$CACHE_HOST" ]]; then
      options+=(--session-save=redis "--session-save-redis-host=$CACHE_HOST")
      CHANGED+=(magento:session-redis-host)
    fi
    if [[ ${now[cache_backend]-} == *[Rr]edis* && ${now[cache_server]-} != "$CACHE_HOST" ]]; then
      options+=(--cache-backend=redis "--cache-backend-redis-server=$CACHE_HOST")
      CHANGED+=(magento:cache-redis-server)
    fi
    if [[ ${now[page_backend]-} == *[Rr]edis* && ${now[page_server]-} != "$CACHE_HOST" ]]; then
      options+=(--page-cache=redis "--page-cache-redis-server=$CACHE_HOST")
      CHANGED+=(magento:page-cache-redis-server)
    fi
  fi
  ((${#options[@]})) || return 0
  mark_pending cache-flush
  (cd -- "$APP_ROOT" && as_web_user ./bin/magento setup:config:set ${options[@]+"${options[@]}"} --no-interaction) \
    || fail "bin/magento setup:config:set failed"
}

# After setup:config:set (now or in the run that failed after it) the cache must be flushed.
flush_magento_cache() {
  [[ -x $APP_ROOT/bin/magento ]] || fail "$APP_ROOT/bin/magento not found"
  (cd -- "$APP_ROOT" && as_web_user ./bin/magento cache:flush) || fail "bin/magento cache:flush failed"
}

run_magento() {
  (cd -- "$APP_ROOT" && as_web_user ./bin/magento "$@") || fail "bin/magento $1 failed"
}

# WordPress keeps its constants in wp-config.php; WP-CLI reads and writes them.
wp_get() {
  as_web_user wp config get "$1" --path="$APP_ROOT" 2> /dev/null
}
wp_set() {
  mark_pending
  as_web_user wp config set "$@" --path="$APP_ROOT" --quiet || fail "wp config set $1 failed"
  CHANGED+=("wordpress:$1")
}

repoint_wordpress() {
  local current
  if [[ -n $DB_HOST ]]; then
    current=$(wp_get DB_HOST) || fail "wp config get DB_HOST failed in $APP_ROOT"
    [[ $current == "$DB_ADDRESS" ]] || wp_set DB_HOST "$DB_ADDRESS"
  fi
  if [[ -n $CACHE_HOST ]]; then
    current=$(wp_get WP_REDIS_HOST) || current=
    [[ $current == "$CACHE_HOST" ]] || wp_set WP_REDIS_HOST "$CACHE_HOST"
  fi
  # Where this script manages the cron, WP-Cron on page loads is off in every region (a
  # system cron entry or timer runs it in the active region); set with the rest, so the
  # PHP-FPM reload below picks it up.
  if [[ -n $CRON_WANT ]]; then
    current=$(wp_get DISABLE_WP_CRON) || current=
    [[ $current == 1 || $current == true ]] || wp_set DISABLE_WP_CRON true --raw
  fi
}

# Cron: systemd timers when cronTimers names them, else the profile's own (Magento's
# crontab of its file-system owner; WordPress's system cron entry, with the page-load
# WP-Cron disabled everywhere), else (envfile without timers) nothing to manage.
cron_timers() {
  local timer timers=()
  IFS=',' read -ra timers <<< "$CRON_TIMERS"
  for timer in ${timers[@]+"${timers[@]}"}; do
    if [[ $CRON_WANT == on ]]; then
      if ! systemctl is-enabled --quiet -- "$timer" || ! systemctl is-active --quiet -- "$timer"; then
        systemctl enable --now -- "$timer" || fail "systemctl enable --now $timer failed"
        CHANGED+=("cron:$timer")
      fi
    elif systemctl is-enabled --quiet -- "$timer" || systemctl is-active --quiet -- "$timer"; then
      systemctl disable --now -- "$timer" || fail "systemctl disable --now $timer failed"
      CHANGED+=("cron:$timer")
    fi
  done
}

cron_magento() {
  local installed=0
  command -v crontab > /dev/null || fail "crontab is required to manage Magento's cron"
  if crontab -u "$WEB_USER" -l 2> /dev/null | grep -q '^#~ MAGENTO START'; then
    installed=1
  fi
  if [[ $CRON_WANT == on ]] && ((!installed)); then
    run_magento cron:install
    CHANGED+=(cron:magento)
  elif [[ $CRON_WANT == off ]] && ((installed)); then
    run_magento cron:remove
    CHANGED+=(cron:magento)
  fi
}

cron_wordpress() {
  local wp_bin tmp
  if [[ $CRON_WANT == off ]]; then
    if [[ -e $WP_CRON_FILE ]]; then
      rm -f -- "$WP_CRON_FILE"
      CHANGED+=(cron:wordpress)
    fi
    return 0
  fi
  wp_bin=$(command -v wp) || fail "wp (WP-CLI) not found"
  mkdir -p -- "$CRON_DIR"
  tmp=$(mktemp "$CRON_DIR/.shop-failover-wp-cron.XXXXXX")
  printf '%s\n' "# shop-failover: WordPress cron runs in the active region only (DISABLE_WP_CRON is set)." \
    "* * * * * $WEB_USER $wp_bin cron event run --due-now --path=$APP_ROOT --quiet" > "$tmp"
  chmod 644 -- "$tmp"
  if cmp -s -- "$tmp" "$WP_CRON_FILE"; then
    rm -f -- "$tmp"
  else
    mv -f -- "$tmp" "$WP_CRON_FILE"
    CHANGED+=(cron:wordpress)
  fi
}

apply_cron() {
  [[ -n $CRON_WANT ]] || return 0
  if [[ -n $CRON_TIMERS ]]; then
    cron_timers
  elif [[ $PROFILE == magento ]]; then
    cron_magento
  elif [[ $PROFILE == wordpress ]]; then
    cron_wordpress
  else
    CRON_STATE=unmanaged
    return 0
  fi
  CRON_STATE=$CRON_WANT
}

# Maintenance mode, for the fence and failback's write freeze. WordPress leaves maintenance
# 10 minutes after the time in .maintenance, so it names a far future (2100-01-01).
apply_maintenance() {
  [[ -n $MAINTENANCE ]] || return 0
  case $PROFILE in
    magento)
      local flag=$APP_ROOT/var/.maintenance.flag
      if [[ $MAINTENANCE == on && ! -e $flag ]]; then
        run_magento maintenance:enable
        CHANGED+=(maintenance:on)
      elif [[ $MAINTENANCE == off && -e $flag ]]; then
        run_magento maintenance:disable
        CHANGED+=(maintenance:off)
      fi
      ;;
    wordpress)
      local file=$APP_ROOT/.maintenance
      if [[ $MAINTENANCE == on && ! -e $file ]]; then
        printf '%s\n' '<?php $upgrading = 4102444800; // shop-failover: maintenance until the repoint document lifts it' > "$file"
        chmod 644 -- "$file"
        CHANGED+=(maintenance:on)
      elif [[ $MAINTENANCE == off && -e $file ]]; then
        rm -f -- "$file"
        CHANGED+=(maintenance:off)
      fi
      ;;
  esac
}

# Writes stop first: maintenance on and cron off come before anything is repointed.
if [[ $MAINTENANCE == on ]]; then apply_maintenance; fi
if [[ $CRON_WANT == off ]]; then apply_cron; fi

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

# The services: those configured, else the PHP-FPM unit (php8.x-fpm on Debian and Ubuntu,
# php-fpm on RHEL and Amazon Linux) and the web server (nginx, apache2, httpd) enabled here.
services=()
if [[ -n $SERVICES ]]; then
  IFS=',' read -ra services <<< "$SERVICES"
else
  php_units=()
  web_units=()
  while read -r unit state _; do
    [[ $state == enabled ]] || continue
    unit=${unit%.service}
    if [[ $unit == php* ]]; then php_units+=("$unit"); else web_units+=("$unit"); fi
  done < <(systemctl list-unit-files --type=service --no-legend --no-pager \
    'php*-fpm.service' php-fpm.service nginx.service apache2.service httpd.service 2> /dev/null || true)
  services=(${php_units[@]+"${php_units[@]}"} ${web_units[@]+"${web_units[@]}"})
fi

# A reload is enough for nginx, Apache and PHP-FPM (they re-read their configuration and
# PHP-FPM's workers start with the new pool env and an empty opcache), unless the unit reads
# a changed file through systemd's EnvironmentFile=, which only a restart re-reads. A resumed
# run does not know what changed before, so it restarts.
needs_restart() {
  local unit=$1 files file
  ((${#RESUMED[@]})) && return 0
  [[ $unit =~ ^(nginx|apache2|httpd|php[0-9.]*-fpm|php-fpm)(\.service)?$ ]] || return 0
  files=$(systemctl show -p EnvironmentFiles --value -- "$unit" 2> /dev/null) || files=
  for file in ${CHANGED_FILES[@]+"${CHANGED_FILES[@]}"}; do
    [[ " $files " == *" $file "* ]] && return 0
  done
  return 1
}

# Only when something changed, now or in an earlier run that failed before finishing.
if ((FLUSH_PENDING)) && [[ $PROFILE == magento ]]; then
  flush_magento_cache
fi
if ((RESTART_PENDING)); then
  ((${#services[@]})) || fail "changed ${CHANGED[*]:-files in an earlier run} but no service is configured (services) or enabled (php-fpm, nginx, apache2, httpd) to restart"
  for service in ${services[@]+"${services[@]}"}; do
    if needs_restart "$service"; then
      systemctl restart -- "$service" || fail "systemctl restart $service failed"
      RESTARTED+=("$service")
    else
      systemctl reload-or-restart -- "$service" || fail "systemctl reload-or-restart $service failed"
      RELOADED+=("$service")
    fi
  done
fi
for service in ${services[@]+"${services[@]}"}; do
  systemctl is-active --quiet -- "$service" || fail "service $service is not active"
done
rm -f -- "$PENDING_FILE"

# Writes resume last: cron on and maintenance off once the server is repointed and healthy.
if [[ $CRON_WANT == on ]]; then apply_cron; fi
if [[ $MAINTENANCE == off ]]; then apply_maintenance; fi

SUMMARY="repoint: profile=$PROFILE region=$REGION db=${DB_ADDRESS:-unchanged} cache=${CACHE_HOST:-unchanged} changed=${CHANGED[*]:-none} restarted=${RESTARTED[*]:-none} reloaded=${RELOADED[*]:-none} cron=$CRON_STATE maintenance=${MAINTENANCE:-unchanged} services=$(IFS=,; echo "${services[*]:-none}")"
if ((${#RESUMED[@]})); then
  SUMMARY+=" resumed=${RESUMED[*]}"
fi
echo "$SUMMARY"
