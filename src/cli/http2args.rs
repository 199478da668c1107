//! `--api` and the HTTP/2 transport's flags: which transport a run uses,
//! token authentication with Apple's `.p8` key, and the request headers.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};

use apnsblast::http2::config::Http2Config;
use apnsblast::http2::jwt::{AuthKey, ProviderToken};
use apnsblast::http2::request::PushType;

use super::given;

/// Apple's HTTP/2 ports: a gateway on one of these speaks the provider API.
const HTTP2_PORTS: [u16; 2] = [443, 2197];

/// The longest `apns-collapse-id` Apple takes, in bytes.
const MAX_COLLAPSE_ID: usize = 64;

/// Flags that only the binary transport takes, by clap id and as typed.
pub const BINARY_ONLY: [(&str, &str); 9] = [
    ("format", "--format"),
    ("style", "--style"),
    ("window_bytes", "--window-bytes"),
    ("confirm_every", "--confirm-every"),
    ("careful_frames", "--careful-frames"),
    ("batch_bytes", "--batch-bytes"),
    ("send_buffer", "--send-buffer"),
    ("connect_ahead", "--connect-ahead"),
    ("nodelay", "--nodelay"),
];

/// Flags that only the HTTP/2 transport takes.
pub const HTTP2_ONLY: [(&str, &str); 8] = [
    ("auth_key", "--auth-key"),
    ("key_id", "--key-id"),
    ("team_id", "--team-id"),
    ("topic", "--topic"),
    ("push_type", "--push-type"),
    ("collapse_id", "--collapse-id"),
    ("streams", "--streams"),
    ("allow_invalid_majority", "--allow-invalid-majority"),
];

/// `--api`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ApiArg {
    /// The binary provider protocol (port 2195 and binary-compatible gateways).
    Binary,
    /// Apple's HTTP/2 provider API.
    Http2,
}

/// `--push-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[allow(missing_docs)]
pub enum PushTypeArg {
    Alert,
    Background,
    Voip,
    Complication,
    Fileprovider,
    Mdm,
    Liveactivity,
    Location,
    Pushtotalk,
}

impl PushTypeArg {
    fn push_type(self) -> PushType {
        match self {
            PushTypeArg::Alert => PushType::Alert,
            PushTypeArg::Background => PushType::Background,
            PushTypeArg::Voip => PushType::Voip,
            PushTypeArg::Complication => PushType::Complication,
            PushTypeArg::Fileprovider => PushType::FileProvider,
            PushTypeArg::Mdm => PushType::Mdm,
            PushTypeArg::Liveactivity => PushType::LiveActivity,
            PushTypeArg::Location => PushType::Location,
            PushTypeArg::Pushtotalk => PushType::PushToTalk,
        }
    }
}

/// The transport and the HTTP/2 settings.
#[derive(Debug, Args)]
pub struct Http2Args {
    /// Transport: Apple's HTTP/2 provider API, or the binary protocol. Default:
    /// http2 for Apple's hosts (no --gateway), gateways on port 443 or 2197,
    /// and runs given an HTTP/2 flag (such as --auth-key); binary otherwise
    #[arg(long, value_enum)]
    pub api: Option<ApiArg>,
    /// Token authentication: Apple's .p8 key file (AuthKey_KEYID.p8); its key
    /// id is read from the file name unless --key-id is given. Without it the
    /// certificate (--cert) authenticates
    #[arg(long, value_name = "FILE")]
    pub auth_key: Option<PathBuf>,
    /// The .p8 key's 10-character key id
    #[arg(long, value_name = "KEYID", requires = "auth_key")]
    pub key_id: Option<String>,
    /// Your 10-character Apple Developer team id (with --auth-key)
    #[arg(long, value_name = "TEAMID", requires = "auth_key")]
    pub team_id: Option<String>,
    /// apns-topic: the app's bundle id. Required with --auth-key; with a
    /// certificate, the certificate's topic is used when omitted
    #[arg(long, value_name = "BUNDLE_ID")]
    pub topic: Option<String>,
    /// apns-push-type
    #[arg(long, value_enum, default_value_t = PushTypeArg::Alert)]
    pub push_type: PushTypeArg,
    /// apns-collapse-id: notifications with the same id replace each other
    /// on the device (at most 64 bytes)
    #[arg(long, value_name = "ID")]
    pub collapse_id: Option<String>,
    /// Streams in flight per connection at most (the gateway's own limit applies below it)
    #[arg(long, value_name = "N", default_value_t = Http2Config::default().streams)]
    pub streams: usize,
    /// Send on when most of the first answers are BadDeviceToken (a list
    /// known to be stale). Without it the run stops there: such a list is
    /// most likely the other environment's (--sandbox), and none of its
    /// tokens is marked invalid
    #[arg(long)]
    pub allow_invalid_majority: bool,
}

impl Http2Args {
    /// The transport: `--api`, or the default for where the run connects.
    pub fn api(&self, gateway: Option<&str>) -> ApiArg {
        if let Some(api) = self.api {
            return api;
        }
        if HTTP2_ONLY.iter().any(|(id, _)| given(id)) {
            return ApiArg::Http2;
        }
        match gateway {
            Some(gateway) if !is_http2_gateway(gateway) => ApiArg::Binary,
            _ => ApiArg::Http2,
        }
    }

    /// Refuses the flags of the transport not in use, by name.
    ///
    /// # Errors
    /// The first such flag given.
    pub fn check_flags(api: ApiArg) -> anyhow::Result<()> {
        let (others, theirs, ours) = match api {
            ApiArg::Binary => (&HTTP2_ONLY[..], "HTTP/2", "binary"),
            ApiArg::Http2 => (&BINARY_ONLY[..], "binary", "HTTP/2"),
        };
        if let Some((_, flag)) = others.iter().find(|(id, _)| given(id)) {
            bail!("{flag} is a setting of the {theirs} transport; this run uses the {ours} one (see --api)");
        }
        Ok(())
    }

    /// The largest payload the push type may carry.
    pub fn payload_limit(&self) -> usize {
        self.push_type.push_type().payload_limit()
    }

    /// The HTTP/2 settings, with the `.p8` key read and checked.
    ///
    /// # Errors
    /// An unreadable or wrong key, ids Apple would refuse, a missing topic.
    pub fn config(&self, priority: u8) -> anyhow::Result<Http2Config> {
        if let Some(id) = &self.collapse_id
            && id.len() > MAX_COLLAPSE_ID
        {
            bail!("--collapse-id: {} bytes long; Apple takes at most {MAX_COLLAPSE_ID}", id.len());
        }
        let token = match &self.auth_key {
            Some(path) => Some(Arc::new(self.provider_token(path)?)),
            None => None,
        };
        if token.is_some() && self.topic.is_none() {
            bail!("--topic: required with --auth-key (the app's bundle id, e.g. com.example.app)");
        }
        Ok(Http2Config {
            token,
            topic: self.topic.clone(),
            push_type: self.push_type.push_type(),
            priority,
            collapse_id: self.collapse_id.clone(),
            streams: self.streams,
            environment_guard: !self.allow_invalid_majority,
            ..Http2Config::default()
        })
    }

    fn provider_token(&self, path: &Path) -> anyhow::Result<ProviderToken> {
        // The key's error names the file and says what it holds; its
        // Display already ends with the cause, so the chain is left out.
        let key = AuthKey::load(path).map_err(|e| anyhow::anyhow!("--auth-key: {e}"))?;
        let key_id = match &self.key_id {
            Some(id) => id.clone(),
            None => key_id_of(path).with_context(|| {
                format!("--auth-key {}: give --key-id (the file is not named AuthKey_KEYID.p8)", path.display())
            })?,
        };
        let Some(team_id) = &self.team_id else {
            bail!("--team-id: required with --auth-key (your Apple Developer team id)")
        };
        ProviderToken::new(key, &key_id, team_id).map_err(|e| anyhow::anyhow!("--auth-key {}: {e}", path.display()))
    }
}

/// Whether `gateway` (`HOST[:PORT]`) is an HTTP/2 provider API: one of
/// Apple's HTTP/2 ports, or Apple's API host without a port.
pub fn is_http2_gateway(gateway: &str) -> bool {
    let (host, port) = match gateway.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(':') => (host, port.parse::<u16>().ok()),
        _ => (gateway, None),
    };
    let apples_api = host.starts_with("api.") && host.ends_with(".push.apple.com");
    match port {
        Some(p) => HTTP2_PORTS.contains(&p),
        None => apples_api,
    }
}

/// The key id in a file name as Apple ships it: `AuthKey_ABC123DEFG.p8`.
fn key_id_of(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let id = name.strip_prefix("AuthKey_")?.strip_suffix(".p8")?;
    Some(id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(api: Option<ApiArg>) -> Http2Args {
        Http2Args {
            api,
            auth_key: None,
            key_id: None,
            team_id: None,
            topic: None,
            push_type: PushTypeArg::Alert,
            collapse_id: None,
            streams: 10,
            allow_invalid_majority: false,
        }
    }

    #[test]
    fn apples_ports_and_no_gateway_mean_http2_any_other_port_binary() {
        let a = args(None);
        assert_eq!(a.api(None), ApiArg::Http2);
        assert_eq!(a.api(Some("api.push.apple.com:443")), ApiArg::Http2);
        assert_eq!(a.api(Some("localhost:2197")), ApiArg::Http2);
        assert_eq!(a.api(Some("gateway.example.com:2195")), ApiArg::Binary);
        assert_eq!(a.api(Some("api.sandbox.push.apple.com")), ApiArg::Http2, "Apple's API host without a port");
        assert_eq!(a.api(Some("relay.example")), ApiArg::Binary);
        assert_eq!(args(Some(ApiArg::Binary)).api(Some("localhost:443")), ApiArg::Binary, "--api decides");
        assert!(is_http2_gateway("[::1]:2197") && !is_http2_gateway("[::1]:2196"));
    }

    #[test]
    fn the_key_id_comes_from_apples_file_name() {
        assert_eq!(key_id_of(Path::new("/keys/AuthKey_ABC123DEFG.p8")).as_deref(), Some("ABC123DEFG"));
        assert_eq!(key_id_of(Path::new("key.p8")), None);
    }
}
