//! How many streams a connection may keep open.

/// How many streams one connection may keep open: the limit the gateway
/// announced (and `--streams` caps), lowered by the gateway's refusals.
///
/// A gateway may refuse streams below the limit it announced: Apple allows
/// one stream on a new token-authenticated connection until a request has
/// been answered, and lowers its limit after an expired token. A refusal is
/// not a try, so sending again into it could go on without end (and every
/// refusal would look like an answer to the response timeout). After one,
/// the connection keeps no more streams open than it had when refused, and
/// each answer allows one more, up to the announced limit.
#[derive(Debug, Default)]
pub struct StreamBudget {
    /// Streams allowed since the last refusal (`None`: never refused).
    allowed: Option<usize>,
}

impl StreamBudget {
    /// Streams that may be open, given the limit announced now.
    pub fn limit(&self, announced: usize) -> usize {
        self.allowed.map_or(announced, |n| n.min(announced))
    }

    /// A stream was refused while `open` others stayed open. `false` when
    /// none did: the gateway takes no stream on this connection, which is
    /// then of no use.
    #[must_use]
    pub fn on_refused(&mut self, open: usize) -> bool {
        self.allowed = Some(open.max(1));
        open > 0
    }

    /// The gateway answered a stream: one more may be open.
    pub fn on_answered(&mut self) {
        if let Some(n) = &mut self.allowed {
            *n += 1;
        }
    }
}
