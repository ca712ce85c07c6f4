# Installs the build prerequisites, then checks formatting and lints.
. "$(dirname "$0")/../lib.sh"
set -euo pipefail
cd "$TERN_ROOT"
command -v cargo >/dev/null || die "cargo is missing: install Rust with rustup"
# Everything the sections need from Debian, in one apt transaction (each section also asks for
# its own, so it runs alone too): coturn's turnutils clients, Chromium, promtool, openssl for
# the TLS tests, strace for the stunclient check, iproute2 for the security namespace.
need_apt build-essential pkg-config ca-certificates openssl coturn strace chromium iproute2 prometheus curl
command -v systemd-analyze >/dev/null || need_apt systemd
rustup component list --installed 2>/dev/null | grep -q rustfmt || rustup component add rustfmt clippy || true
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
