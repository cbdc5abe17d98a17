#!/usr/bin/env bash
# Installs the Debian packages the tests and the drill run for real, when missing:
#   mariadb-server, mariadb-client  the databases behind the emulator's RDS (tools/fidelity/)
#   util-linux                      unshare and chroot for the emulator's SSM agent, flock
#   php-cli                         the repoint script reads Magento's app/etc/env.php with php
#   chromium                        renders the drill's report page headless (tools/check_report_page.py)
#   wordpress, nginx, php-fpm,      the drill's WordPress shop on each app server: WordPress from
#   php-mysql                       Debian's package, served by nginx and PHP-FPM (tests/drill/src/shop.rs)
# Services are never started by the install (policy-rc.d denies it while we install); the
# test kit starts its own servers on free loopback ports and stops them with their owner.
# Needs root (or sudo) and the Debian package mirror; a no-op when everything is present.
# Usage: scripts/install-packages.sh
set -euo pipefail

needed=()
command -v mariadbd >/dev/null || needed+=(mariadb-server)
command -v mariadb >/dev/null || needed+=(mariadb-client)
{ command -v unshare && command -v chroot && command -v flock; } >/dev/null || needed+=(util-linux coreutils)
command -v php >/dev/null || needed+=(php-cli)
command -v chromium >/dev/null || needed+=(chromium)
[[ -x /usr/sbin/nginx ]] || needed+=(nginx)
compgen -G '/usr/sbin/php-fpm[0-9]*' >/dev/null || needed+=(php-fpm)
{ command -v php >/dev/null && php -r 'exit(extension_loaded("mysqli") ? 0 : 1);'; } || needed+=(php-mysql)
[[ -f /usr/share/wordpress/wp-load.php ]] || needed+=(wordpress)
if ((${#needed[@]} == 0)); then
  echo "Debian packages present: $(mariadbd --version)"
  exit 0
fi

as_root=()
if ((EUID != 0)); then
  command -v sudo >/dev/null || { echo "installing ${needed[*]} needs root or sudo" >&2; exit 1; }
  as_root=(sudo)
fi
started=$(date +%s)
# Keep package scripts from starting the services we install; restore what was there.
policy=/usr/sbin/policy-rc.d
saved=""
if [[ -e $policy ]]; then
  saved=$(mktemp)
  "${as_root[@]}" cp -p "$policy" "$saved"
fi
restore_policy() {
  if [[ -n $saved ]]; then
    "${as_root[@]}" cp -p "$saved" "$policy"
    rm -f "$saved"
  else
    "${as_root[@]}" rm -f "$policy"
  fi
}
trap restore_policy EXIT
printf '#!/bin/sh\nexit 101\n' | "${as_root[@]}" tee "$policy" >/dev/null
"${as_root[@]}" chmod 755 "$policy"

export DEBIAN_FRONTEND=noninteractive
install() { "${as_root[@]}" apt-get install -y --no-install-recommends "${needed[@]}"; }
if ! install >/tmp/install-packages.log 2>&1; then
  # A fresh machine may have no package lists yet.
  "${as_root[@]}" apt-get update >>/tmp/install-packages.log 2>&1
  install >>/tmp/install-packages.log 2>&1 || { tail -20 /tmp/install-packages.log >&2; exit 1; }
fi
echo "installed ${needed[*]} in $(($(date +%s) - started)) s: $(mariadbd --version)"
