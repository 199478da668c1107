//! `--gateway HOST:PORT` / `--sandbox`: where `send` and `feedback` connect,
//! with Apple's addresses as defaults, and hints for the connection errors
//! that one flag fixes.

use clap::Args;

/// Production gateway (PROTOCOL.md).
const GATEWAY: &str = "gateway.push.apple.com";
/// Sandbox gateway.
const GATEWAY_SANDBOX: &str = "gateway.sandbox.push.apple.com";
/// Production feedback service.
const FEEDBACK: &str = "feedback.push.apple.com";
/// Sandbox feedback service.
const FEEDBACK_SANDBOX: &str = "feedback.sandbox.push.apple.com";

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
        let text = format!("{e:#}");
        let hint = if text.contains("does not accept this certificate") {
            if self.gateway.is_some() {
                return e;
            } else if self.sandbox {
                "a production certificate needs the production servers (drop --sandbox)"
            } else {
                "a development (sandbox) certificate needs --sandbox"
            }
        } else if text.contains("certificate verify failed") {
            "the server's certificate is not trusted: give its CA with --ca FILE"
        } else {
            return e;
        };
        anyhow::anyhow!("{text}; hint: {hint}")
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
}
