//! Placeholder; filled by the configuration work.
