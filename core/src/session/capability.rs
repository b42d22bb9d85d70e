//! Capability negotiation and message-id offsets ([PROTOCOL.md §6.5](crate::spec::protocol)).

use super::hello::Capability;

/// Message ids below this belong to the base protocol (Hello, Disconnect, Ping, Pong and
/// reserved ids); sub-protocols are laid out from here (geth `baseProtocolLength`).
pub const BASE_PROTOCOL_LENGTH: u64 = 16;

/// One of the application's sub-protocols, as [`Session::send`](super::Session::send) and
/// [`Node::send`](crate::node::Node::send) take it and as messages report it: the position of
/// the protocol in [`SessionConfig::protocols`](super::SessionConfig::protocols). Get it from
/// [`SessionConfig::add_protocol`](super::SessionConfig::add_protocol) or
/// [`SessionConfig::protocol_id`](super::SessionConfig::protocol_id) rather than by
/// counting, so that a message goes to the protocol it was written for.
///
/// Message codes are relative to the protocol: code 0 is the protocol's first message
/// (`Status` in eth), whatever wire id the session gave the protocol (the wire id is the
/// code plus the protocol's offset, which capability negotiation decides per session).
///
/// An id means something only for the configuration it came from: sending under an id that
/// is not in the node's protocol list, or that the peer did not agree to, is refused as
/// [`SendError::NotNegotiated`](super::SendError::NotNegotiated).
///
/// ```
/// use devp2p_core::session::{Protocol, SessionConfig};
///
/// let mut config = SessionConfig::default();
/// let eth = config.add_protocol(Protocol::new("eth", 68, 17));
/// let snap = config.add_protocol(Protocol::new("snap", 1, 8));
/// assert_eq!(config.protocol_id("snap", 1), Some(snap));
/// assert_ne!(eth, snap);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProtocolId(usize);

impl ProtocolId {
    /// The protocol at position `index` of the protocol list.
    pub const fn new(index: usize) -> Self {
        Self(index)
    }

    /// Its position in the protocol list.
    pub const fn index(self) -> usize {
        self.0
    }
}

impl std::fmt::Display for ProtocolId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "protocol #{}", self.0)
    }
}

/// A sub-protocol the application speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protocol {
    /// Name, e.g. `eth`.
    pub name: String,
    /// Version, e.g. 68.
    pub version: u64,
    /// How many message ids it uses (a protocol constant: eth/68 uses 17).
    pub length: u64,
}

impl Protocol {
    /// A protocol from its name, version and message count.
    pub fn new(name: impl Into<String>, version: u64, length: u64) -> Self {
        Self {
            name: name.into(),
            version,
            length,
        }
    }

    /// The capability it is advertised as.
    pub fn capability(&self) -> Capability {
        Capability::new(self.name.clone(), self.version)
    }
}

/// A protocol both sides speak, with the message-id range it was given on this session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedCapability {
    /// The protocol in the application's protocol list.
    pub protocol: ProtocolId,
    /// Its name.
    pub name: String,
    /// The negotiated version: the highest both sides speak.
    pub version: u64,
    /// First wire message id.
    pub offset: u64,
    /// Number of message ids.
    pub length: u64,
}

impl SharedCapability {
    /// Whether wire id `id` falls in this capability's range.
    pub fn contains(&self, id: u64) -> bool {
        id >= self.offset && id - self.offset < self.length
    }
}

/// Matches the remote's capabilities against our protocols, geth's way: walk the remote list
/// sorted by (name, version); each exact (name, version) match takes the next id range, and a
/// later version of a name already matched takes back the earlier one's range. The result is
/// the highest shared version of each name, in name order, contiguous from
/// [`BASE_PROTOCOL_LENGTH`].
pub fn match_protocols(local: &[Protocol], remote: &[Capability]) -> Vec<SharedCapability> {
    let mut caps: Vec<&Capability> = remote.iter().collect();
    caps.sort_by(|a, b| {
        a.name
            .as_bytes()
            .cmp(b.name.as_bytes())
            .then(a.version.cmp(&b.version))
    });
    let mut offset = BASE_PROTOCOL_LENGTH;
    let mut result: Vec<SharedCapability> = Vec::new();
    for cap in caps {
        let Some((index, proto)) = local
            .iter()
            .enumerate()
            .find(|(_, p)| p.name == cap.name && p.version == cap.version)
        else {
            continue;
        };
        if let Some(pos) = result.iter().position(|s| s.name == cap.name) {
            let old = result.remove(pos);
            offset -= old.length;
        }
        result.push(SharedCapability {
            protocol: ProtocolId(index),
            name: proto.name.clone(),
            version: proto.version,
            offset,
            length: proto.length,
        });
        offset = offset.saturating_add(proto.length);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cap(name: &str, version: u64) -> Capability {
        Capability::new(name, version)
    }
    fn proto(name: &str, version: u64, length: u64) -> Protocol {
        Protocol::new(name, version, length)
    }

    /// go-ethereum `TestMatchProtocols`, case by case: (remote, local, expected name ->
    /// (version, offset relative to the base protocol)).
    #[test]
    fn geth_match_protocols_cases() {
        type Case = (
            Vec<Capability>,
            Vec<Protocol>,
            Vec<(&'static str, u64, u64)>,
        );
        let cases: Vec<Case> = vec![
            // No remote capabilities.
            (vec![], vec![proto("a", 0, 0)], vec![]),
            // No local protocols.
            (vec![cap("a", 0)], vec![], vec![]),
            // No mutual protocols.
            (vec![cap("a", 0)], vec![proto("b", 0, 0)], vec![]),
            // Some matches, some differences.
            (
                vec![cap("local", 0), cap("match1", 0), cap("match2", 0)],
                vec![
                    proto("match1", 0, 0),
                    proto("match2", 0, 0),
                    proto("remote", 0, 0),
                ],
                vec![("match1", 0, 0), ("match2", 0, 0)],
            ),
            // Various alphabetical ordering.
            (
                vec![cap("aa", 0), cap("ab", 0), cap("bb", 0), cap("ba", 0)],
                vec![
                    proto("ba", 0, 0),
                    proto("bb", 0, 0),
                    proto("ab", 0, 0),
                    proto("aa", 0, 0),
                ],
                vec![("aa", 0, 0), ("ab", 0, 0), ("ba", 0, 0), ("bb", 0, 0)],
            ),
            // No mutual versions.
            (vec![cap("", 1)], vec![proto("", 2, 0)], vec![]),
            // Multiple versions, single common.
            (
                vec![cap("", 1), cap("", 2)],
                vec![proto("", 2, 0), proto("", 3, 0)],
                vec![("", 2, 0)],
            ),
            // Multiple versions, multiple common.
            (
                vec![cap("", 1), cap("", 2), cap("", 3), cap("", 4)],
                vec![proto("", 2, 0), proto("", 3, 0)],
                vec![("", 3, 0)],
            ),
            // Various version orderings.
            (
                vec![cap("", 4), cap("", 1), cap("", 3), cap("", 2)],
                vec![proto("", 2, 0), proto("", 3, 0), proto("", 1, 0)],
                vec![("", 3, 0)],
            ),
            // Versions overriding sub-protocol lengths.
            (
                vec![cap("", 1), cap("", 2), cap("", 3), cap("a", 0)],
                vec![
                    proto("", 1, 1),
                    proto("", 2, 2),
                    proto("", 3, 3),
                    proto("a", 0, 0),
                ],
                vec![("", 3, 0), ("a", 0, 3)],
            ),
        ];
        for (i, (remote, local, want)) in cases.into_iter().enumerate() {
            let got: Vec<(String, u64, u64)> = match_protocols(&local, &remote)
                .into_iter()
                .map(|s| (s.name, s.version, s.offset - BASE_PROTOCOL_LENGTH))
                .collect();
            let want: Vec<(String, u64, u64)> = want
                .into_iter()
                .map(|(n, v, o)| (n.to_string(), v, o))
                .collect();
            assert_eq!(got, want, "case {i}");
        }
    }

    #[test]
    fn the_spec_example_lays_out_eth70_then_snap1() {
        let local = [
            proto("eth", 69, 18),
            proto("eth", 70, 18),
            proto("snap", 1, 8),
        ];
        let remote = [
            cap("snap", 1),
            cap("eth", 70),
            cap("eth", 69),
            cap("les", 4),
        ];
        let m = match_protocols(&local, &remote);
        assert_eq!(m.len(), 2);
        assert_eq!(
            (m[0].name.as_str(), m[0].version, m[0].offset, m[0].protocol),
            ("eth", 70, 0x10, ProtocolId(1))
        );
        assert_eq!(
            (
                m[1].name.as_str(),
                m[1].offset,
                m[1].offset + m[1].length - 1
            ),
            ("snap", 0x22, 0x29)
        );
        assert!(m[0].contains(0x21) && !m[0].contains(0x22));
    }
}
