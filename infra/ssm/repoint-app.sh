#!/bin/bash
# Repoints one app server (Magento 2, WordPress/WooCommerce, or any app reading an env
# file) at the active region and database, then restarts its services if anything changed.
#
# Runs as the custom SSM Command document `repoint-app-document.json` (rendered from this
# file). SSM substitutes the double-brace placeholders after checking each value against its
# allowedPattern; the same patterns are checked again below, so a value that slipped
# through can never run as code. Values are only ever used quoted, as data.
# Idempotent: a second run with the same values changes nothing and restarts nothing.
set -euo pipefail
umask 077

PROFILE='{{ appProfile }}'
REGION='{{ region }}'
DB_HOST='{{ dbHost }}'
DB_PORT='{{ dbPort }}'
APP_ROOT='{{ appRoot }}'
WEB_USER='{{ webUser }}'
ENV_FILE='{{ envFile }}'
REGION_KEYS='{{ regionKeys }}'
DB_HOST_KEY='{{ dbHostKey }}'
FPM_POOL_FILES='{{ fpmPoolFiles }}'
SERVICES='{{ services }}'

fail() {
  echo "repoint: $*" >&2
  exit 1
}

check() {
  [[ $2 =~ $3 ]] || fail "invalid $1: $(printf '%q' "$2")"
}

check appProfile "$PROFILE" '^(magento|wordpress|envfile)$'
check region "$REGION" '^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$'
check dbHost "$DB_HOST" '^([A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?)?$'
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

DB_ADDRESS=$DB_HOST
if [[ -n $DB_HOST && -n $DB_PORT && $DB_PORT != 3306 ]]; then
  DB_ADDRESS="$DB_HOST:$DB_PORT"
fi
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
CHANGED=()
RESTARTED=()

# The KEY=value settings every env file and pool file must end up with.
declare -A WANT=()
IFS=',' read -ra region_keys <<< "$REGION_KEYS"
for key in "${region_keys[@]}"; do
  WANT[$key]=$REGION
done
if [[ -n $DB_HOST && -n $DB_HOST_KEY ]]; then
  WANT[$DB_HOST_KEY]=$DB_ADDRESS
fi
mapfile -t WANT_KEYS < <(printf '%s\n' "${!WANT[@]}" | LC_ALL=C sort)

# Puts TMP in place of FILE unless identical: timestamped backup, mode and owner kept,
# atomic rename in the same directory.
install_if_changed() {
  local file=$1 tmp=$2
  if cmp -s -- "$tmp" "$file"; then
    rm -f -- "$tmp"
    return 0
  fi
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
      if [[ -v WANT[$key] ]]; then
        printf '%s%s=%s\n' "${BASH_REMATCH[1]}" "$key" "${WANT[$key]}" >> "$tmp"
        seen[$key]=1
        continue
      fi
    fi
    printf '%s\n' "$line" >> "$tmp"
  done < "$file"
  for key in "${WANT_KEYS[@]}"; do
    if [[ -n $key && ! -v seen[$key] ]]; then
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
      if [[ -v WANT[$key] ]]; then
        printf 'env[%s] = %s\n' "$key" "${WANT[$key]}" >> "$tmp"
        seen[$key]=1
        continue
      fi
    fi
    printf '%s\n' "$line" >> "$tmp"
  done < "$file"
  for key in "${WANT_KEYS[@]}"; do
    if [[ -n $key && ! -v seen[$key] ]]; then
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
  (cd -- "$APP_ROOT" && runuser -u "$WEB_USER" -- ./bin/magento setup:config:set --db-host="$DB_ADDRESS" --no-interaction) \
    || fail "bin/magento setup:config:set failed"
  (cd -- "$APP_ROOT" && runuser -u "$WEB_USER" -- ./bin/magento cache:flush) || fail "bin/magento cache:flush failed"
  CHANGED+=("magento:db-host")
}

# WordPress keeps DB_HOST in wp-config.php; WP-CLI reads and writes it.
repoint_wordpress() {
  [[ -n $DB_HOST ]] || return 0
  local current
  current=$(runuser -u "$WEB_USER" -- wp config get DB_HOST --path="$APP_ROOT") || fail "wp config get DB_HOST failed in $APP_ROOT"
  if [[ $current == "$DB_ADDRESS" ]]; then
    return 0
  fi
  runuser -u "$WEB_USER" -- wp config set DB_HOST "$DB_ADDRESS" --path="$APP_ROOT" --quiet || fail "wp config set DB_HOST failed"
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
IFS=',' read -ra pool_files <<< "$FPM_POOL_FILES"
for pool in "${pool_files[@]}"; do
  rewrite_fpm_pool "$pool"
done

IFS=',' read -ra services <<< "$SERVICES"
if ((${#CHANGED[@]})); then
  for service in "${services[@]}"; do
    systemctl restart -- "$service" || fail "systemctl restart $service failed"
    RESTARTED+=("$service")
  done
fi
for service in "${services[@]}"; do
  systemctl is-active --quiet -- "$service" || fail "service $service is not active"
done

echo "repoint: profile=$PROFILE region=$REGION db=${DB_ADDRESS:-unchanged} changed=${CHANGED[*]:-none} restarted=${RESTARTED[*]:-none}"
