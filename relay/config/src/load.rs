//! Loading: the command line and the config file it names, in coturn's order, into a
//! [`Loaded`] configuration, or an early exit ([`Outcome`]), or every error ([`ConfigError`]).
//!
//! Order (coturn's `main()`): the command line is read first for `-c`, `-n`, `-h` and
//! `--version`; then the file (found on coturn's search path), then the command line's options
//! over it, then the `user` lines of both. Nothing is opened besides the config file and the
//! `cert`/`pkey` files being looked for.

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::build::{Builder, Built, Ctx};
use crate::cmdline;
use crate::conf_file;
use crate::diag::{ConfigError, Diagnostic, Origin, Warning};
use crate::effective;
use crate::search;
use crate::values::shown;
use crate::{Config, help};

/// coturn's default config file name.
pub const DEFAULT_CONFIG_FILE: &str = "turnserver.conf";

/// Files larger than this are refused rather than read (a `-c /dev/zero` must not hang).
const MAX_CONFIG_FILE: u64 = 16 << 20;

/// A configuration that loaded: ready to start the relay.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The effective configuration.
    pub config: Config,
    /// Warnings to log at start-up (unknown or unsupported options, coturn's own warnings).
    pub warnings: Vec<Warning>,
    /// Facts worth logging that are not mistakes (e.g. `allow-loopback-peers` is on); not
    /// turned into errors by `--check-config`.
    pub notices: Vec<Diagnostic>,
    /// The config file read, if any.
    pub config_file: Option<PathBuf>,
    source: Source,
}

/// How a configuration was loaded, so it can be loaded again the same way.
#[derive(Clone)]
enum Source {
    CommandLine { args: Vec<OsString>, cwd: PathBuf },
    File { path: PathBuf, cwd: PathBuf },
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The arguments may carry --static-auth-secret: count them, do not print them.
        match self {
            Source::CommandLine { args, cwd } => {
                f.debug_struct("CommandLine").field("args", &args.len()).field("cwd", cwd).finish()
            }
            Source::File { path, cwd } => f.debug_struct("File").field("path", path).field("cwd", cwd).finish(),
        }
    }
}

impl Loaded {
    /// Loads the configuration again, the same way (same arguments, same working directory),
    /// for a reload on SIGHUP: a bad new configuration gives the same `file:line` errors and the
    /// caller keeps the old one.
    pub fn reload(&self) -> Result<Loaded, ConfigError> {
        match &self.source {
            Source::CommandLine { args, cwd } => match run(args, cwd, true)? {
                Outcome::Run(loaded) => Ok(loaded),
                // The arguments once loaded, so they hold no -h, --version or --check-config.
                _ => Err(ConfigError::single(Origin::CommandLine, "the arguments no longer start the relay")),
            },
            Source::File { path, cwd } => file_only(path, cwd, true),
        }
    }

    /// The process arguments this configuration came from, if it came from a command line.
    pub fn args(&self) -> Option<&[OsString]> {
        match &self.source {
            Source::CommandLine { args, .. } => Some(args),
            Source::File { .. } => None,
        }
    }
}

/// What the command line asks for.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // made once per process; boxing would only cost the caller
pub enum Outcome {
    /// Start the relay with this configuration.
    Run(Loaded),
    /// `-h` / `--help`: print this to stdout and exit 0.
    Help(String),
    /// `--version`: print this to stdout and exit 0.
    Version(String),
    /// `--check-config` passed: print this (the effective configuration in turnserver.conf
    /// form, secrets hidden) to stdout and exit 0. When it fails, [`parse_command_line`]
    /// returns the errors instead (warnings count as errors), for exit status 1.
    CheckConfig(String),
}

/// Reads `turnserver`'s command line (the process arguments without argv\[0\]) and the config
/// file it names, by coturn's rules.
///
/// `Err` holds every error found, each `file:line: what is wrong, and what would be right`;
/// the process should print them and exit with [`ConfigError::EXIT_STATUS`].
pub fn parse_command_line<I, S>(args: I) -> Result<Outcome, ConfigError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    parse_command_line_in(args, &cwd)
}

/// [`parse_command_line`] with relative paths counted from `cwd` instead of the process's
/// working directory.
#[doc(hidden)]
pub fn parse_command_line_in<I, S>(args: I, cwd: &Path) -> Result<Outcome, ConfigError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<OsString> = args.into_iter().map(|a| a.as_ref().to_os_string()).collect();
    run(&args, cwd, true)
}

/// Reads one config file, with no command line: what the sidecar uses to share the relay's
/// secrets, realm and listeners. A relative `path` is searched like `-c`.
pub fn load_file(path: &Path) -> Result<Loaded, ConfigError> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    file_only(path, &cwd, true)
}

pub(crate) fn run(args: &[OsString], cwd: &Path, check_files: bool) -> Result<Outcome, ConfigError> {
    let cl = cmdline::parse(args);
    if cl.help {
        return Ok(Outcome::Help(help::text()));
    }
    if cl.version {
        return Ok(Outcome::Version(help::version()));
    }
    let mut errors = cl.errors;
    let mut warnings = cl.warnings;
    let mut config_file = None;
    let mut file_entries = Vec::new();
    if !cl.no_config_file {
        let explicit = cl.config_file.is_some();
        let name = cl.config_file.as_deref().unwrap_or(DEFAULT_CONFIG_FILE);
        match search::find(name, cwd, None) {
            Some(path) => match read(&path) {
                Ok(bytes) => {
                    let lexed = conf_file::lex(&bytes, &path);
                    file_entries = lexed.entries;
                    warnings.extend(lexed.warnings);
                    errors.extend(lexed.errors);
                    config_file = Some(path);
                }
                Err(e) => errors.push(e),
            },
            None if explicit => errors.push(Diagnostic::new(
                Origin::CommandLine,
                format!(
                    "-c {0}: the config file was not found{1}: give the right path, or -n to read no file",
                    shown(name),
                    if name.starts_with('/') {
                        String::new()
                    } else {
                        format!(" (searched {})", search::searched(cwd))
                    }
                ),
            )),
            None => warnings.push(Diagnostic::new(
                Origin::CommandLine,
                format!(
                    "no {DEFAULT_CONFIG_FILE} was found (searched {}), so only the defaults and the command line \
                     count: give one with -c, or say -n",
                    search::searched(cwd)
                ),
            )),
        }
    }
    let mut b = Builder::new(Ctx { cwd: cwd.to_path_buf(), config_file: config_file.clone(), check_files });
    for e in file_entries.into_iter().chain(cl.entries) {
        b.apply(e);
    }
    let Built { config, warnings: w, notices, errors: e } = b.finish();
    warnings.extend(w);
    errors.extend(e);
    if cl.check_config {
        errors.append(&mut warnings);
    }
    sort(&mut errors);
    sort(&mut warnings);
    if !errors.is_empty() {
        return Err(ConfigError { errors, warnings });
    }
    let loaded = Loaded {
        config,
        warnings,
        notices,
        config_file,
        source: Source::CommandLine { args: args.to_vec(), cwd: cwd.to_path_buf() },
    };
    if cl.check_config {
        return Ok(Outcome::CheckConfig(effective::check_report(&loaded)));
    }
    Ok(Outcome::Run(loaded))
}

pub(crate) fn file_only(path: &Path, cwd: &Path, check_files: bool) -> Result<Loaded, ConfigError> {
    let found = match path.to_str() {
        Some(name) => search::find(name, cwd, None),
        None => Some(cwd.join(path)).filter(|p| p.is_file()),
    };
    let Some(found) = found else {
        return Err(ConfigError::single(
            Origin::Whole { file: Some(path.to_path_buf()) },
            "the config file was not found: give the right path",
        ));
    };
    let bytes = read(&found).map_err(|e| ConfigError { errors: vec![e], warnings: vec![] })?;
    let lexed = conf_file::lex(&bytes, &found);
    let mut b = Builder::new(Ctx { cwd: cwd.to_path_buf(), config_file: Some(found.clone()), check_files });
    for e in lexed.entries {
        b.apply(e);
    }
    let Built { config, mut warnings, notices, mut errors } = b.finish();
    let mut all_errors = lexed.errors;
    all_errors.append(&mut errors);
    let mut all_warnings = lexed.warnings;
    all_warnings.append(&mut warnings);
    sort(&mut all_errors);
    sort(&mut all_warnings);
    if !all_errors.is_empty() {
        return Err(ConfigError { errors: all_errors, warnings: all_warnings });
    }
    Ok(Loaded {
        config,
        warnings: all_warnings,
        notices,
        config_file: Some(found.clone()),
        source: Source::File { path: found, cwd: cwd.to_path_buf() },
    })
}

/// File lines in order, then the command line, then the whole; stable within each.
fn sort(diagnostics: &mut [Diagnostic]) {
    diagnostics.sort_by_key(|d| d.origin.sort_key());
}

fn read(path: &Path) -> Result<Vec<u8>, Diagnostic> {
    let origin = || Origin::Whole { file: Some(path.to_path_buf()) };
    let f = std::fs::File::open(path)
        .map_err(|e| Diagnostic::new(origin(), format!("cannot open the config file ({e}): check its permissions")))?;
    let mut bytes = Vec::new();
    f.take(MAX_CONFIG_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Diagnostic::new(origin(), format!("cannot read the config file ({e}): check the file")))?;
    if bytes.len() as u64 > MAX_CONFIG_FILE {
        return Err(Diagnostic::new(origin(), "the config file is larger than 16 MiB: is it really turnserver.conf?"));
    }
    Ok(bytes)
}
