# Debian's Chromium for the web console's end-to-end tests (Playwright drives it; it never
# downloads a browser of its own). Source this file, then:
#   chromium_ensure     # installs the 'chromium' package when /usr/bin/chromium is missing
# As root it runs apt-get itself; otherwise through sudo, like scripts/postgres.sh.

chromium_path=/usr/bin/chromium

chromium_ensure() {
    [[ -x "$chromium_path" ]] && return 0
    local sudo=()
    if [[ $(id -u) != 0 ]]; then
        if command -v sudo >/dev/null; then
            sudo=(sudo)
        else
            printf '==> %s\n' "Chromium ($chromium_path) is missing and installing it needs root: run as root, install sudo, or install the 'chromium' package first." >&2
            return 1
        fi
    fi
    printf '==> %s\n' "installing Chromium from the distribution's packages" >&2
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium
    [[ -x "$chromium_path" ]] || { printf '==> %s\n' "chromium was installed but $chromium_path is missing" >&2; return 1; }
}
