#!/usr/bin/env bash
# One entry point for people and CI on Debian 12 (run as root, or with sudo
# available): installs what corral needs (apt packages, a venv with the
# package in editable mode), then runs a job.
#
#   bash dev.sh demo     compile the shipped agent example, check it, run its tests
#   bash dev.sh test     run the test suite (extra arguments go to pytest)
set -euo pipefail
cd "$(dirname "$0")"
export PATH="$PATH:/usr/sbin:/sbin"

setup() {
    local need=()
    command -v apparmor_parser >/dev/null || need+=(apparmor)
    command -v strace >/dev/null || need+=(strace)
    command -v curl >/dev/null || need+=(curl)
    command -v openssl >/dev/null || need+=(openssl)
    command -v nghttpd >/dev/null || need+=(nghttp2-server)
    [ -d /usr/share/apparmor/extra-profiles ] || need+=(apparmor-profiles apparmor-profiles-extra)
    command -v nft >/dev/null || need+=(nftables)
    command -v systemd-analyze >/dev/null || need+=(systemd)
    command -v ip >/dev/null || need+=(iproute2)
    command -v git >/dev/null || need+=(git)
    command -v gcc >/dev/null || need+=(gcc)
    [ -f /usr/lib/x86_64-linux-gnu/libc.a ] || need+=(libc6-dev)
    command -v setpriv >/dev/null || need+=(util-linux)
    # programs the learned-policy tests trace and rerun (tests/adversarial/test_learned_policies.py)
    command -v sqlite3 >/dev/null || need+=(sqlite3)
    command -v jq >/dev/null || need+=(jq)
    command -v xz >/dev/null || need+=(xz-utils)
    command -v zstd >/dev/null || need+=(zstd)
    command -v zip >/dev/null || need+=(zip)
    command -v rsync >/dev/null || need+=(rsync)
    command -v perl >/dev/null || need+=(perl)
    [ -x /usr/bin/convert ] || need+=(imagemagick)
    # the consumers the artifacts are tested with (tests/test_consumer_*.py)
    dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
    command -v runc >/dev/null || need+=(runc)
    command -v crun >/dev/null || need+=(crun)
    command -v bwrap >/dev/null || need+=(bubblewrap)
    command -v podman >/dev/null || need+=(podman)
    command -v gcc >/dev/null || need+=(gcc libc6-dev)
    # the VM tier (tests/vm/): Debian's kernel, with AppArmor, under QEMU (TCG)
    command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
    command -v cpio >/dev/null || need+=(cpio)
    ldconfig -p 2>/dev/null | grep 'libseccomp.so.2 ' >/dev/null || need+=(libseccomp2)  # not grep -q: its early exit fails the pipe (pipefail)
    command -v python3 >/dev/null || need+=(python3)
    python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
    if ((${#need[@]})); then
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo=sudo
        echo "dev.sh: installing ${need[*]}" >&2
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    fi
    vm_kernel
    [ -x .venv/bin/python ] || python3 -m venv .venv
    local stamp=.venv/.corral-installed
    if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
        .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
        touch "$stamp"
    fi
}

# Debian 12's own kernel package (AppArmor built in and on, Landlock ABI 2),
# downloaded once into a cache shared by every checkout; tests/vm/vm.py
# extracts it and boots it.
vm_kernel() {
    local cache=${CORRAL_VM_CACHE:-$HOME/.cache/corral-vm}
    compgen -G "$cache/linux-image-6.1.0-*-amd64_*.deb" >/dev/null && return
    mkdir -p "$cache"
    local pkg
    pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^linux-image-6\.1\.0-/ {print $2; exit}')
    if [ -z "$pkg" ]; then
        pkg=$(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-amd64$' | awk '{print $1}' | sort -V | tail -1)
    fi
    echo "dev.sh: downloading $pkg for the VM tier into $cache" >&2
    (cd "$cache" && apt-get download -q "$pkg" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2) || true
    compgen -G "$cache/linux-image-6.1.0-*-amd64_*.deb" >/dev/null || { echo "dev.sh: could not download $pkg" >&2; return 1; }
}

job=${1:-}
shift || true
case "$job" in
    demo)
        setup
        mkdir -p build
        .venv/bin/corral compile examples/agent-http2.toml -o build --force
        echo
        echo "== build/agent-http2.apparmor, checked by the real apparmor_parser:"
        apparmor_parser -Q -S build/agent-http2.apparmor >/dev/null 2>build/apparmor_parser.log && echo "apparmor_parser: compiled OK"
        echo
        echo "== the policy's own tests, under real enforcement (Landlock + seccomp):"
        mkdir -p /run/agent-http2
        .venv/bin/corral verify examples/agent-http2.toml
        ;;
    test)
        setup
        exec .venv/bin/python -m pytest "$@"
        ;;
    setup)
        setup
        ;;
    *)
        echo "usage: bash dev.sh demo|test|setup [pytest arguments]" >&2
        exit 2
        ;;
esac
