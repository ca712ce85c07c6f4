# Unit and integration tests of the workspace, the fuzz-corpus replay among them, and the
# purity check of the sans-IO core.
. "$(dirname "$0")/../lib.sh"
set -euo pipefail
cd "$TERN_ROOT"
# The core must not depend on any I/O crate.
forbidden='^(mio|socket2|rustls|tokio|libc|crossbeam|getrandom) '
if cargo tree -p relay-proto -e normal --prefix none --locked | grep -E "$forbidden"; then
  die "relay-proto depends on an I/O crate (see above)"
fi
cargo test --workspace --all-targets --locked
# The fuzz crate must keep building (it lives outside the workspace).
cargo check --manifest-path fuzz/Cargo.toml --quiet
