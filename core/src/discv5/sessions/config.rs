//! The session layer's limits and timeouts, each with where its value comes from, and the
//! settings that default to them.

use std::time::Duration;

/// How long a request waits for its answer, and for each further NODES message of a
/// multi-part answer (geth `respTimeout`, configurable as `V5RespTimeout`; sigp and ChainSafe
/// wait 1 s, the spec suggests 500 ms; [DISCV5.md §7.2](crate::spec::discv5)). A handshake
/// in between re-arms the same timer rather than adding its own.
pub const REQUEST_TIMEOUT: Duration = Duration::from_millis(700);
/// How often a request is sent again after a timeout before it fails. geth never resends;
/// sigp and ChainSafe configure `request_retries = 1` but count the first send in it, so they
/// do not resend either. We resend once (our choice): it is what recovers a lost WHOAREYOU
/// or handshake packet, and it costs a silent peer 1.4 s instead of 0.7 s.
pub const REQUEST_RETRIES: u8 = 1;
/// How long a WHOAREYOU we sent can be answered, and is re-sent byte for byte to further
/// undecryptable packets from the same node and address (geth `handshakeTimeout`; the spec
/// says 1 s; sigp keeps it for its request timeout, 1 s; [DISCV5.md §4.9](crate::spec::discv5)).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(1);
/// Sessions kept, least recently used evicted first (geth `NewSessionCache(1024)`; sigp
/// 1000, ChainSafe 2000; [DISCV5.md §6](crate::spec::discv5)). geth and we keep a session
/// until it is evicted; sigp and ChainSafe also expire them after a day.
pub const MAX_SESSIONS: usize = 1024;
/// WHOAREYOUs we have sent and still accept a handshake for, the oldest evicted first. geth
/// and sigp keep an unbounded map that only expiry empties, and ChainSafe bounds it by expiry
/// and its IP rate limiter; a flood from many addresses must not grow memory, so we also
/// bound it, at the size of the session cache (our choice).
pub const MAX_PENDING_CHALLENGES: usize = 1024;
/// WHOAREYOUs (fresh or re-sent) we send to one IP address per second, as a burst of as many
/// that refills continuously. A WHOAREYOU is the one packet an unauthenticated source can
/// make us send, so a spoofed source could point them at a victim; this caps what one victim
/// address receives. The value is sigp's per-IP packet filter rate (9 per second, its filter
/// being off by default); geth has no such limit ([DISCV5.md §11.1](crate::spec::discv5)).
/// Loopback addresses are exempt: they cannot be spoofed from the network, and a local test
/// network puts every node behind 127.0.0.1.
pub const WHOAREYOU_PER_IP_PER_SECOND: u32 = 9;
/// IP addresses whose WHOAREYOU budget is tracked, the least recently used forgotten first
/// (our choice, the session cache's size). A forgotten address starts again with a full burst.
pub const MAX_RATE_LIMITED_IPS: usize = 1024;
/// Records of remote nodes kept for the enr-seq of the WHOAREYOUs we send and for the keys of
/// the handshakes we answer (learnt from handshakes, from contacts and from the caller), the
/// least recently learnt forgotten first (our choice, the session cache's size; geth reads
/// its table and node database instead).
pub const MAX_KNOWN_RECORDS: usize = 1024;
/// Requests waiting behind the one in flight to the same node and address, for instance while
/// its handshake runs. geth and sigp queue without bound; a lookup sends one FINDNODE per node
/// and revalidation one PING, so 16 is ample (our choice).
pub const MAX_QUEUED_REQUESTS_PER_NODE: usize = 16;
/// Requests outstanding in all, in flight and queued (our choice; geth bounds none, and its
/// TALKREQ handler allows 1024 at once).
pub const MAX_REQUESTS: usize = 1024;
/// How long the nonce of a packet we sent still identifies the node it went to, once no
/// request waits for that packet: a peer repeats its pending WHOAREYOU, naming the packet it
/// first challenged, to every packet of ours it cannot read (§4.9). When that packet was a
/// response, or belonged to a request that has ended, the WHOAREYOU is answered with the
/// request now in flight to that node, if any; otherwise every request in the challenge's
/// lifetime would draw the same unanswerable WHOAREYOU. 2 s is the longest challenge
/// lifetime among the clients (ChainSafe: twice its 1 s request timeout; geth and sigp 1 s).
pub const RECENT_NONCE_LIFETIME: Duration = Duration::from_secs(2);
/// Nonces of recently sent packets remembered for that, the oldest forgotten first (our
/// choice).
pub const MAX_RECENT_NONCES: usize = 1024;
/// Datagrams waiting for [`super::Sessions::poll_transmit`]; beyond it the oldest are dropped
/// (our choice, as in discv4).
pub const MAX_QUEUED_TRANSMITS: usize = 4096;
/// Events waiting for [`super::Sessions::poll_event`]; beyond it the oldest are dropped (our
/// choice, as in discv4).
pub const MAX_QUEUED_EVENTS: usize = 4096;

/// What a [`super::Sessions`] is told at start. Every field defaults to the constant of the
/// same name; tests and fuzzers lower the limits to reach them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionsConfig {
    /// [`REQUEST_TIMEOUT`].
    pub request_timeout: Duration,
    /// [`REQUEST_RETRIES`].
    pub request_retries: u8,
    /// [`HANDSHAKE_TIMEOUT`].
    pub handshake_timeout: Duration,
    /// [`MAX_SESSIONS`] (at least 1).
    pub max_sessions: usize,
    /// [`MAX_PENDING_CHALLENGES`] (at least 1).
    pub max_pending_challenges: usize,
    /// [`WHOAREYOU_PER_IP_PER_SECOND`]; 0 sends none.
    pub whoareyou_per_ip_per_second: u32,
    /// [`MAX_RATE_LIMITED_IPS`] (at least 1).
    pub max_rate_limited_ips: usize,
    /// [`MAX_KNOWN_RECORDS`] (at least 1).
    pub max_known_records: usize,
    /// [`MAX_QUEUED_REQUESTS_PER_NODE`].
    pub max_queued_requests_per_node: usize,
    /// [`MAX_REQUESTS`].
    pub max_requests: usize,
}

impl Default for SessionsConfig {
    fn default() -> Self {
        SessionsConfig {
            request_timeout: REQUEST_TIMEOUT,
            request_retries: REQUEST_RETRIES,
            handshake_timeout: HANDSHAKE_TIMEOUT,
            max_sessions: MAX_SESSIONS,
            max_pending_challenges: MAX_PENDING_CHALLENGES,
            whoareyou_per_ip_per_second: WHOAREYOU_PER_IP_PER_SECOND,
            max_rate_limited_ips: MAX_RATE_LIMITED_IPS,
            max_known_records: MAX_KNOWN_RECORDS,
            max_queued_requests_per_node: MAX_QUEUED_REQUESTS_PER_NODE,
            max_requests: MAX_REQUESTS,
        }
    }
}
