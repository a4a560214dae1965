#!/bin/sh
# Installs what cryo needs to build and test, from Debian's archive, if missing.
set -e
need=""
command -v protoc-c >/dev/null 2>&1 || need="$need protobuf-c-compiler"
[ -f /usr/include/protobuf-c/protobuf-c.h ] || need="$need libprotobuf-c-dev"
[ -f /usr/include/xxhash.h ] || need="$need libxxhash-dev"
command -v python3 >/dev/null 2>&1 || need="$need python3"
[ -x /usr/bin/python3 ] || need="$need python3"
command -v redis-server >/dev/null 2>&1 || need="$need redis-server"
# tests/test_netprogs.py: a node http server
command -v node >/dev/null 2>&1 || need="$need nodejs"
command -v redis-cli >/dev/null 2>&1 || need="$need redis-tools"
[ -f /usr/include/nftables/libnftables.h ] || need="$need libnftables-dev"
command -v nft >/dev/null 2>&1 || need="$need nftables"
command -v sqlite3 >/dev/null 2>&1 || need="$need sqlite3"
# tests/test_tmux.py: a tmux server running vim
command -v tmux >/dev/null 2>&1 || need="$need tmux"
command -v vim >/dev/null 2>&1 || need="$need vim"
command -v java >/dev/null 2>&1 || need="$need default-jre-headless"
[ -z "$need" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "cryo: missing build dependencies:$need (run as root to install them)" >&2
	exit 1
fi
echo "installing:$need"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $need >/dev/null
