//! `--cert`, `--key`, `--cert-password-env`, `--ca`, `--insecure`: loading
//! the provider certificate the way a user expects.
//!
//! The password is never taken on the command line (it would show in `ps`
//! and shell history). It comes from the environment variable named by
//! `--cert-password-env`; without one, an empty password is tried (most
//! exports have none), then a prompt on the terminal if there is one.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;

use apnsblast::tls::{ClientIdentity, TlsConfig, TlsError};

/// TLS options shared by `send` and `feedback`.
#[derive(Debug, Args)]
pub struct TlsArgs {
    /// Provider certificate: PKCS#12 (.p12), or PEM holding the certificate
    /// (and the key, unless --key is given). Required, except over HTTP/2
    /// with token authentication (--auth-key)
    #[arg(long, value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// PEM private key, when --cert holds only the certificate
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Name of an environment variable holding the password of the .p12 file
    /// or encrypted key (without it: no password, else a prompt on a terminal)
    #[arg(long, value_name = "VAR")]
    pub cert_password_env: Option<String>,
    /// Extra trusted root certificate (PEM), e.g. a relay's or the mock
    /// gateway's CA; repeatable
    #[arg(long, value_name = "FILE")]
    pub ca: Vec<PathBuf>,
    /// Do not verify the server's certificate (DANGEROUS: anyone on the path
    /// can impersonate the gateway)
    #[arg(long)]
    pub insecure: bool,
}

impl TlsArgs {
    /// Loads and checks the certificate and trust roots.
    ///
    /// # Errors
    /// One line naming the file and what is wrong with it.
    pub fn load(&self) -> anyhow::Result<TlsConfig> {
        self.load_with(true)
    }

    /// As [`TlsArgs::load`], where a certificate is optional (token
    /// authentication): without `--cert` the client presents none.
    ///
    /// # Errors
    /// As [`TlsArgs::load`].
    pub fn load_optional(&self) -> anyhow::Result<TlsConfig> {
        self.load_with(false)
    }

    fn load_with(&self, required: bool) -> anyhow::Result<TlsConfig> {
        for ca in &self.ca {
            if !ca.is_file() {
                bail!("--ca {}: no such file", ca.display());
            }
        }
        let identity = match &self.cert {
            Some(cert) => {
                check_key_use(self, cert);
                let identity = self.identity(cert)?;
                log::info!("certificate {:?}, valid until {}", identity.subject(), identity.not_after());
                Some(identity)
            }
            None if required => bail!("--cert FILE: the provider certificate is required"),
            None => None,
        };
        if self.insecure {
            warn_insecure();
        }
        Ok(TlsConfig { identity, extra_roots: self.ca.clone(), danger_accept_invalid_certs: self.insecure })
    }

    fn identity(&self, cert: &Path) -> anyhow::Result<ClientIdentity> {
        let key = self.key.as_deref();
        if let Some(var) = &self.cert_password_env {
            let var = env_var_name("--cert-password-env", var)?;
            let password = std::env::var(var).map_err(|e| match e {
                std::env::VarError::NotPresent => {
                    anyhow::anyhow!("--cert-password-env {var}: the environment variable {var} is not set")
                }
                std::env::VarError::NotUnicode(_) => {
                    anyhow::anyhow!("--cert-password-env {var}: the value of {var} is not valid UTF-8")
                }
            })?;
            return ClientIdentity::load(cert, key, Some(&password)).map_err(explain);
        }
        match ClientIdentity::load(cert, key, Some("")) {
            Err(TlsError::BadPassword { path, detail }) => {
                if !can_prompt() {
                    bail!(
                        "{}: the file needs a password ({detail}); put it in an environment variable and \
                         name the variable with --cert-password-env",
                        path.display()
                    );
                }
                let password = rpassword::prompt_password(format!("Password for {}: ", path.display()))
                    .with_context(|| format!("{}: cannot read the password from the terminal", path.display()))?;
                ClientIdentity::load(cert, key, Some(&password)).map_err(explain)
            }
            other => other.map_err(explain),
        }
    }
}

/// A prompt is possible when a person is at a terminal: stdin may carry the
/// token list, but rpassword reads the terminal itself. `pub(crate)`: `tune`
/// asks its confirmation under the same condition.
pub(crate) fn can_prompt() -> bool {
    std::io::stdin().is_terminal() || std::io::stderr().is_terminal()
}

/// Every TLS error already names its file; add a hint where one helps.
fn explain(e: TlsError) -> anyhow::Error {
    match &e {
        TlsError::Read { path, source } if source.kind() == std::io::ErrorKind::NotFound => {
            anyhow::anyhow!("{}: no such file", path.display())
        }
        _ => anyhow::Error::new(e),
    }
}

/// Printed on every run with `--insecure`, whatever the log level.
pub fn warn_insecure() {
    eprintln!(
        "apnsblast: WARNING: --insecure: the server's certificate is NOT verified; anyone on the network \
         path can pose as the gateway and read every notification"
    );
}

/// A key given beside a PKCS#12 file is not used: worth a warning.
fn check_key_use(args: &TlsArgs, cert: &Path) {
    if let Some(key) = &args.key
        && cert.extension().is_some_and(|e| e.eq_ignore_ascii_case("p12") || e.eq_ignore_ascii_case("pfx"))
    {
        log::warn!("--key {}: ignored, the key comes from the PKCS#12 file {}", key.display(), cert.display());
    }
}

/// `var` when it can name an environment variable (letters, digits and
/// `_`, not starting with a digit). Anything else was most likely the
/// secret itself, given where its variable's name belongs: the error says
/// so without repeating it.
pub(crate) fn env_var_name<'a>(flag: &str, var: &'a str) -> anyhow::Result<&'a str> {
    let mut chars = var.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(var)
    } else {
        anyhow::bail!(
            "{flag} takes the NAME of an environment variable that holds the secret (such as APNS_TOKEN), \
             not the secret itself; what was given is not a variable name (not shown, as it may be the secret)"
        )
    }
}
