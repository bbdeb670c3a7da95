#!/usr/bin/env bash
# Build a Python 3.11 base image from Debian packages, for when no container registry is
# reachable (CI here; air-gapped sites): debootstrap --variant=minbase bookworm plus python3,
# trimmed like Debian's slim images, then `docker import`ed.
#
#   scripts/debian-base-image.sh TAG
#
# The Debian mirror comes from this machine's apt configuration at run time
# (/etc/apt/sources.list.d/*.sources, then *.list and /etc/apt/sources.list), as does an
# HTTP proxy (Acquire::http::Proxy). Needs root and debootstrap; talks to the Docker daemon
# named by DOCKER_HOST through ${DOCKER:-docker}. The base has no security updates beyond
# the suite's own packages: use it to build and test offline, and prefer a maintained
# public base (the Dockerfile's default) for production.
set -euo pipefail

SUITE=${DEBIAN_SUITE:-bookworm}
PACKAGES=${DEBIAN_BASE_PACKAGES:-python3}
DOCKER=${DOCKER:-docker}
TAG=${1:?usage: debian-base-image.sh TAG}

# First deb822 stanza (Types: deb) whose Suites list $SUITE; prints its first URI.
deb822_mirror() {
  awk -v suite="$SUITE" '
    BEGIN { RS = ""; FS = "\n" }
    {
      types = ""; uris = ""; suites = ""; enabled = "yes"
      for (i = 1; i <= NF; i++) {
        line = $i
        if (line ~ /^[#[:space:]]/ || index(line, ":") == 0) continue
        key = tolower(substr(line, 1, index(line, ":") - 1))
        value = substr(line, index(line, ":") + 1)
        gsub(/^[ \t]+|[ \t]+$/, "", value)
        if (key == "types") types = value
        else if (key == "uris") uris = value
        else if (key == "suites") suites = value
        else if (key == "enabled") enabled = tolower(value)
      }
      if (enabled == "no" || (" " types " ") !~ / deb /) next
      if ((" " suites " ") ~ (" " suite " ")) { split(uris, u, " "); print u[1]; exit }
    }' "$@"
}

# First one-line "deb [options] URI SUITE COMPONENTS..." entry for $SUITE.
list_mirror() {
  awk -v suite="$SUITE" '
    $1 == "deb" {
      i = 2
      if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
      if ($(i + 1) == suite) { print $i; exit }
    }' "$@"
}

find_mirror() {
  local file mirror
  for file in /etc/apt/sources.list.d/*.sources; do
    [ -f "$file" ] || continue
    mirror=$(deb822_mirror "$file")
    if [ -n "$mirror" ]; then echo "$mirror"; return; fi
  done
  for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$file" ] || continue
    mirror=$(list_mirror "$file")
    if [ -n "$mirror" ]; then echo "$mirror"; return; fi
  done
}

MIRROR=$(find_mirror)
if [ -z "$MIRROR" ]; then
  echo "debian-base-image: no apt source for suite '$SUITE' in /etc/apt/sources.list{,.d/}" \
       "(set DEBIAN_SUITE or add a 'deb URI $SUITE main' source)" >&2
  exit 1
fi
case "$MIRROR" in
  http://* | https://* | ftp://* | file:/*) ;;
  *) echo "debian-base-image: apt source '$MIRROR' is not a URL debootstrap can use" >&2; exit 1 ;;
esac
eval "$(apt-config shell http_proxy Acquire::http::Proxy)"
if [ -n "${http_proxy:-}" ]; then export http_proxy; fi

ROOTFS=$(mktemp -d "${TMPDIR:-/tmp}/tierwise-rootfs.XXXXXX")
cleanup() {
  # debootstrap mounts /proc and /sys inside the target; a failed run can leave them behind
  awk -v root="$ROOTFS" '$2 == root || index($2, root "/") == 1 { print $2 }' /proc/mounts |
    sort -r |
    while read -r mount; do umount -l "$mount" || true; done
  rm -rf "$ROOTFS"
}
trap cleanup EXIT

keyring=()
if [ -f /usr/share/keyrings/debian-archive-keyring.gpg ]; then
  keyring=(--keyring=/usr/share/keyrings/debian-archive-keyring.gpg)
fi
echo "debian-base-image: debootstrap $SUITE (+$PACKAGES) from $MIRROR" >&2
if ! debootstrap --variant=minbase --include="$PACKAGES" "${keyring[@]}" \
    "$SUITE" "$ROOTFS" "$MIRROR" >"$ROOTFS.log" 2>&1; then
  tail -n 30 "$ROOTFS.log" >&2
  rm -f "$ROOTFS.log"
  exit 1
fi
rm -f "$ROOTFS.log"

# What a container never reads: package caches and lists, docs, man pages, translations.
# The host's resolver settings stay out (Docker mounts its own /etc/resolv.conf).
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/cache/apt/*.bin \
       "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* \
       "$ROOTFS"/usr/share/info/* "$ROOTFS"/usr/share/locale/* "$ROOTFS"/var/log/*.log \
       "$ROOTFS"/var/log/apt/* "$ROOTFS"/tmp/*
: >"$ROOTFS/etc/resolv.conf"

tar --numeric-owner -C "$ROOTFS" -c . |
  "$DOCKER" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    - "$TAG" >/dev/null
echo "$TAG"
