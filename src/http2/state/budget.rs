//! How many streams a connection may keep open.

/// The fewest streams a connection after a lost one starts with.
const RESTART_FLOOR: usize = 16;

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
///
/// A connection lost with streams open puts each of them in doubt, and
/// every such send uses a try. After a connection that answered `n` and
/// then died, the next ones start at `2n` (at least [`RESTART_FLOOR`]),
/// or twice the most one of them has answered since, and grow by one per
/// answer, as TCP restarts after a loss: a gateway that keeps ending
/// connections early then leaves a few dozen sends in doubt at a loss
/// instead of the whole stream limit, and one that answered millions
/// before dropping is not held back at all.
#[derive(Debug, Default)]
pub struct StreamBudget {
    /// Streams allowed since the last refusal or the connection's start
    /// (`None`: no limit but the announced one).
    allowed: Option<usize>,
}

impl StreamBudget {
    /// The budget of a connection when, since one was lost with sends in
    /// doubt, a connection answered at most `answered` (`None`: none was lost).
    pub fn after_loss(answered: Option<u64>) -> StreamBudget {
        let start = |n: u64| usize::try_from(n.saturating_mul(2)).unwrap_or(usize::MAX).max(RESTART_FLOOR);
        StreamBudget { allowed: answered.map(start) }
    }

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
