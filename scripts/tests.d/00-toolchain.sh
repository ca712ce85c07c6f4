# Installs the build prerequisites, then checks formatting and lints.
. "$(dirname "$0")/../lib.sh"
set -euo pipefail
cd "$TERN_ROOT"
command -v cargo >/dev/null || die "cargo is missing: install Rust with rustup"
need_apt build-essential pkg-config ca-certificates
rustup component list --installed 2>/dev/null | grep -q rustfmt || rustup component add rustfmt clippy || true
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
