//! `--gateway HOST:PORT` / `--sandbox`: where `send` and `feedback` connect,
//! with Apple's addresses as defaults, and hints for the connection errors
//! that one flag fixes.

use apnsblast::GatewayError;
use clap::Args;

/// Production gateway of Apple's legacy binary provider API.
const GATEWAY: &str = "gateway.push.apple.com";
/// Sandbox gateway.
const GATEWAY_SANDBOX: &str = "gateway.sandbox.push.apple.com";
/// Production feedback service.
const FEEDBACK: &str = "feedback.push.apple.com";
/// Sandbox feedback service.
const FEEDBACK_SANDBOX: &str = "feedback.sandbox.push.apple.com";
/// Production HTTP/2 provider API (Apple's "Sending notification requests to APNs").
const API: &str = "api.push.apple.com";
/// Development HTTP/2 provider API.
const API_SANDBOX: &str = "api.sandbox.push.apple.com";

/// Where to connect: shared by `send` and `feedback`.
#[derive(Debug, Args)]
pub struct GatewayArgs {
    /// Gateway HOST:PORT (or HOST, with the default port) instead of Apple's
    #[arg(long, value_name = "HOST:PORT")]
    pub gateway: Option<String>,
    /// Use Apple's sandbox (development) servers instead of production
    #[arg(long, conflicts_with = "gateway")]
    pub sandbox: bool,
}

/// Which of Apple's services a [`GatewayArgs`] points at.
#[derive(Debug, Clone, Copy)]
pub enum Service {
    /// The push gateway, port 2195.
    Push,
    /// The feedback service, port 2196.
    Feedback,
    /// The HTTP/2 provider API, port 443.
    Http2,
}

impl GatewayArgs {
    /// `host:port` to connect to.
    ///
    /// # Errors
    /// `--gateway` is not `HOST[:PORT]`.
    pub fn resolve(&self, service: Service) -> anyhow::Result<String> {
        let (prod, sandbox, port) = match service {
            Service::Push => (GATEWAY, GATEWAY_SANDBOX, 2195),
            Service::Feedback => (FEEDBACK, FEEDBACK_SANDBOX, 2196),
            Service::Http2 => (API, API_SANDBOX, 443),
        };
        let Some(given) = self.gateway.as_deref() else {
            return Ok(format!("{}:{port}", if self.sandbox { sandbox } else { prod }));
        };
        let given = given.trim();
        let bad = || anyhow::anyhow!("--gateway {given:?}: expected HOST:PORT, e.g. localhost:{port}");
        if given.is_empty() || given.contains('/') || given.contains(char::is_whitespace) {
            return Err(bad());
        }
        // Host only ("example.com", "::1", "[::1]") gets the service's port.
        let bracketed = given.starts_with('[');
        let has_port = if bracketed { given.contains("]:") } else { given.matches(':').count() == 1 };
        if !has_port {
            return Ok(if given.contains(':') && !bracketed {
                format!("[{given}]:{port}")
            } else {
                format!("{given}:{port}")
            });
        }
        let (host, p) = given.rsplit_once(':').ok_or_else(bad)?;
        match p.parse::<u16>() {
            Ok(p) if p > 0 && !host.is_empty() => Ok(given.to_owned()),
            _ => Err(bad()),
        }
    }

    /// Adds the flag that fixes a connection error, where one is known: the
    /// classic mix-up of certificate and environment, or a server whose
    /// certificate is not trusted.
    pub fn hint(&self, e: anyhow::Error) -> anyhow::Error {
        let cause = e.chain().find_map(|c| match c.downcast_ref::<apnsblast::Error>() {
            Some(apnsblast::Error::Gateway { cause, .. }) => Some(cause),
            _ => None,
        });
        let hint = match cause {
            Some(GatewayError::Refused { .. }) if self.gateway.is_some() => return e,
            Some(GatewayError::Refused { .. }) if self.sandbox => {
                "a production certificate needs the production servers (drop --sandbox)"
            }
            Some(GatewayError::Refused { .. }) => "a development (sandbox) certificate needs --sandbox",
            Some(GatewayError::Untrusted(_)) => "the server's certificate is not trusted: give its CA with --ca FILE",
            Some(GatewayError::NoHttp2) => "a gateway of the binary protocol takes --api binary",
            _ => return e,
        };
        anyhow::anyhow!("{e:#}; hint: {hint}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_addresses() {
        let g = |gateway: Option<&str>, sandbox| GatewayArgs { gateway: gateway.map(str::to_owned), sandbox };
        assert_eq!(g(None, false).resolve(Service::Push).unwrap(), "gateway.push.apple.com:2195");
        assert_eq!(g(None, true).resolve(Service::Feedback).unwrap(), "feedback.sandbox.push.apple.com:2196");
        assert_eq!(g(Some("relay.example"), false).resolve(Service::Push).unwrap(), "relay.example:2195");
        assert_eq!(g(Some("127.0.0.1:9"), false).resolve(Service::Push).unwrap(), "127.0.0.1:9");
        assert_eq!(g(Some("::1"), false).resolve(Service::Push).unwrap(), "[::1]:2195");
        assert_eq!(g(Some("[::1]:7"), false).resolve(Service::Push).unwrap(), "[::1]:7");
        assert!(g(Some("host:port"), false).resolve(Service::Push).is_err());
        assert!(g(Some("host:0"), false).resolve(Service::Push).is_err());
        assert!(g(Some("http://x"), false).resolve(Service::Push).is_err());
    }

    #[test]
    fn a_refused_certificate_gets_the_environment_hint_and_an_untrusted_server_the_ca_hint() {
        let failed = |cause| anyhow::Error::from(apnsblast::Error::Gateway { gateway: "gw:1".into(), cause });
        let refused = || failed(GatewayError::Refused { detail: None });
        let args = |gateway: Option<&str>, sandbox| GatewayArgs { gateway: gateway.map(str::to_owned), sandbox };
        let hinted = |args: GatewayArgs, e| args.hint(e).to_string();
        assert!(
            hinted(args(None, false), refused())
                .ends_with("; hint: a development (sandbox) certificate needs --sandbox")
        );
        assert!(hinted(args(None, true), refused()).ends_with("(drop --sandbox)"));
        assert!(!hinted(args(Some("gw:1"), false), refused()).contains("hint"), "no guess for a gateway of one's own");
        let untrusted = failed(GatewayError::Untrusted("certificate verify failed".into()));
        assert!(hinted(args(None, false), untrusted.context("trial 1")).ends_with("give its CA with --ca FILE"));
        assert!(!hinted(args(None, false), failed(GatewayError::NoAddress)).contains("hint"));
        assert!(hinted(args(Some("gw:1"), false), failed(GatewayError::NoHttp2)).ends_with("takes --api binary"));
    }
}
