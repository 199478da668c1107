//! `--api` and the HTTP/2 transport's flags: which transport a run uses,
//! token authentication with Apple's `.p8` key, and the request headers.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};

use apnsblast::http2::config::Http2Config;
use apnsblast::http2::jwt::{AuthKey, ProviderToken, TOKEN_MAX_AGE_SECS};
use apnsblast::http2::request::PushType;
use apnsblast::tls::TlsConfig;

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
pub const HTTP2_ONLY: [(&str, &str); 9] = [
    ("auth_key", "--auth-key"),
    ("auth_token_env", "--auth-token-env"),
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

/// `--push-type`: Apple's `apns-push-type` values; each one's help says
/// what `--topic` gets added and what else Apple ties to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PushTypeArg {
    /// An alert, sound or badge (topic: the bundle id)
    Alert,
    /// Content for the app in the background (topic: the bundle id; priority 5, never 10)
    Background,
    /// An incoming VoIP call (topic + .voip; payloads up to 5120 bytes)
    Voip,
    /// A watchOS complication update (topic + .complication)
    Complication,
    /// A File Provider extension change (topic + .pushkit.fileprovider)
    Fileprovider,
    /// Managed devices to contact their MDM server (topic: the MDM certificate's)
    Mdm,
    /// A Live Activity update (topic + .push-type.liveactivity; token authentication only)
    Liveactivity,
    /// A location query (topic + .location-query; token authentication only)
    Location,
    /// A Push to Talk update (topic + .voip-ptt)
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
    /// id is read from the file name unless --key-id is given. Without it
    /// (or --auth-token-env) the certificate (--cert) authenticates
    #[arg(long, value_name = "FILE")]
    pub auth_key: Option<PathBuf>,
    /// The .p8 key's 10-character key id
    #[arg(long, value_name = "KEYID", requires = "auth_key")]
    pub key_id: Option<String>,
    /// Your 10-character Apple Developer team id (with --auth-key)
    #[arg(long, value_name = "TEAMID", requires = "auth_key")]
    pub team_id: Option<String>,
    /// Token authentication with a provider token signed elsewhere: the name
    /// of the environment variable holding it (an ES256 JWT), instead of
    /// --auth-key. It is sent as given, never printed, and cannot be renewed
    /// here: APNs refuses it 60 minutes after its iat
    #[arg(long, value_name = "VAR", conflicts_with_all = ["auth_key", "key_id", "team_id"])]
    pub auth_token_env: Option<String>,
    /// apns-topic: the app's bundle id; the suffix --push-type needs (.voip,
    /// .push-type.liveactivity, ...) is added unless it is there. Required
    /// with token authentication; with a certificate, the certificate's
    /// topic is used when omitted
    #[arg(long, value_name = "BUNDLE_ID")]
    pub topic: Option<String>,
    /// apns-push-type: what the notification does (its topic suffix, priority
    /// and authentication follow Apple's rules for it)
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
    /// known to be stale) or DeviceTokenNotForTopic (a list known to mix
    /// apps). Without it the run stops there: such a list is most likely
    /// the other environment's (--sandbox) or another app's (--topic), and
    /// none of its lines is settled
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

    /// Whether the run authenticates with a provider token (no client
    /// certificate needed).
    pub fn token_auth(&self) -> bool {
        self.auth_key.is_some() || self.auth_token_env.is_some()
    }

    /// The HTTP/2 settings, with the `.p8` key (or the ready token) read and
    /// checked. `priority` is `--priority` (`None`: the push type's default).
    ///
    /// # Errors
    /// An unreadable or wrong key or token, ids Apple would refuse, a missing
    /// topic, a priority or authentication the push type cannot have.
    pub fn config(&self, priority: Option<u8>) -> anyhow::Result<Http2Config> {
        if let Some(id) = &self.collapse_id
            && id.len() > MAX_COLLAPSE_ID
        {
            bail!("--collapse-id: {} bytes long; Apple takes at most {MAX_COLLAPSE_ID}", id.len());
        }
        let push_type = self.push_type.push_type();
        let priority = priority.unwrap_or(push_type.default_priority());
        if !push_type.takes_priority(priority) {
            bail!(
                "--priority {priority} with --push-type {push_type}: Apple takes {push_type} notifications at \
                 priority 5 (10 is an error); leave --priority out or give 5"
            );
        }
        if push_type.certificate_only() && self.token_auth() {
            bail!(
                "--push-type {push_type}: Apple takes it with the MDM push certificate only; give --cert, \
                 not --auth-key or --auth-token-env"
            );
        }
        if push_type.token_auth_only() && !self.token_auth() {
            bail!(
                "--push-type {push_type}: Apple takes it with token authentication only; give --auth-key \
                 (or --auth-token-env), not a certificate"
            );
        }
        let token = match (&self.auth_key, &self.auth_token_env) {
            (Some(path), _) => Some(Arc::new(self.provider_token(path)?)),
            (None, Some(var)) => Some(Arc::new(token_from_env(var)?)),
            (None, None) => None,
        };
        if token.is_some() && self.topic.is_none() {
            let flag = if self.auth_key.is_some() { "--auth-key" } else { "--auth-token-env" };
            bail!("--topic: required with {flag} (the app's bundle id, e.g. com.example.app)");
        }
        Ok(Http2Config {
            token,
            topic: self.topic.as_deref().map(|t| push_type.topic(t)),
            push_type,
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
            Some(id) => {
                if let Some(named) = key_id_of(path).filter(|named| named != id) {
                    log::warn!("--key-id {id} differs from the key id in the file name ({named}): using {id}");
                }
                id.clone()
            }
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

/// Without a token or `--topic`, sets the topic of `config` to the app the
/// certificate of `tls` is for.
///
/// # Errors
/// The certificate names no app.
pub fn topic_from_certificate(config: &mut Http2Config, tls: &TlsConfig) -> anyhow::Result<()> {
    if config.token.is_none() && config.topic.is_none() {
        // Apple's provider certificates are for one app, named by their UID.
        let topic = tls.identity.as_ref().and_then(|id| id.topic());
        let Some(topic) = topic else {
            bail!("--topic: required (the certificate's subject names no app: it has no UID)");
        };
        // The push type's suffix goes on it as on --topic.
        config.topic = Some(config.push_type.topic(topic));
    }
    Ok(())
}

/// The provider token held by the environment variable `var`, checked for
/// its shape and age. Errors name the variable, never its value.
fn token_from_env(var: &str) -> anyhow::Result<ProviderToken> {
    let var = super::tlsargs::env_var_name("--auth-token-env", var)?;
    let jwt = match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => v,
        Ok(_) => bail!("--auth-token-env {var}: the variable is empty (it should hold the provider token, a JWT)"),
        Err(std::env::VarError::NotPresent) => {
            bail!("--auth-token-env {var}: no such environment variable (it should hold the provider token, a JWT)")
        }
        Err(std::env::VarError::NotUnicode(_)) => bail!("--auth-token-env {var}: the variable is not text"),
    };
    let token = ProviderToken::fixed(jwt).map_err(|e| anyhow::anyhow!("--auth-token-env {var}: {e}"))?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let iat = token.current().iat();
    // Apple checks iat against its own clock; a minute covers clocks that
    // are merely imprecise.
    if iat > now + 60 {
        bail!(
            "--auth-token-env {var}: the token is issued {} s in the future by this machine's clock: \
             this clock or the signer's is wrong, and APNs would refuse it",
            iat - now
        );
    }
    let age = now.saturating_sub(iat);
    log::info!(
        "--auth-token-env {var}: a provider token issued {age} s ago; APNs refuses it after {TOKEN_MAX_AGE_SECS} s, \
         and it cannot be renewed here"
    );
    Ok(token)
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
            auth_token_env: None,
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
