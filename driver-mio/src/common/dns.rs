//! DNS discovery's TXT lookups, for both drivers: which name servers to ask
//! ([`DnsResolverConfig`], part of [`DriverConfig`](super::DriverConfig)) and the resolver
//! ([`DnsResolver`], hickory-resolver). The protocol — what to ask, what to trust, when to ask
//! again — is the core's; this only resolves the names the node asks for
//! ([`Action::ResolveTxt`](devp2p_core::node::Action::ResolveTxt)) and hands back what the DNS
//! said.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use devp2p_core::dnsdisc::ResolveError;
use hickory_resolver::config::{NameServerConfigGroup, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::TokioResolver;

/// Name servers given at most (our choice: resolv.conf allows three; a few more for tests).
pub const MAX_DNS_SERVERS: usize = 16;

/// Who resolves DNS discovery's names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum DnsResolverConfig {
    /// The system's resolver configuration (`/etc/resolv.conf` on Unix), read at start.
    #[default]
    System,
    /// Only these name servers (IP and port; UDP, and TCP when an answer is truncated): a
    /// resolver of your own, or a test's DNS server on 127.0.0.1.
    Servers(Vec<SocketAddr>),
}

impl fmt::Display for DnsResolverConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DnsResolverConfig::System => f.write_str("the system's resolver"),
            DnsResolverConfig::Servers(s) => {
                let list: Vec<String> = s.iter().map(SocketAddr::to_string).collect();
                write!(f, "the name servers {}", list.join(", "))
            }
        }
    }
}

/// Resolves TXT names, joining each record's character-strings (a TXT record longer than 255
/// bytes arrives in pieces, and EIP-1459 entries often are). Cloning is cheap (one resolver
/// shared). Lookups need a tokio runtime.
#[derive(Clone)]
pub struct DnsResolver {
    inner: Arc<TokioResolver>,
}

impl fmt::Debug for DnsResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DnsResolver")
    }
}

impl DnsResolver {
    /// The system's resolver configuration (`/etc/resolv.conf` on Unix).
    pub fn system() -> std::io::Result<Self> {
        let builder = TokioResolver::builder_tokio().map_err(|e| {
            std::io::Error::other(format!(
                "cannot read the system's resolver configuration: {e}"
            ))
        })?;
        Ok(DnsResolver {
            inner: Arc::new(builder.build()),
        })
    }

    /// Asks only the name servers at `servers` (UDP, and TCP when an answer is truncated).
    pub fn with_servers(servers: &[SocketAddr]) -> Self {
        let mut group = NameServerConfigGroup::new();
        for s in servers.iter().take(MAX_DNS_SERVERS) {
            group.merge(NameServerConfigGroup::from_ips_clear(
                &[s.ip()],
                s.port(),
                true,
            ));
        }
        let config = ResolverConfig::from_parts(None, vec![], group);
        let mut options = ResolverOpts::default();
        // The client times its lookups itself and re-checks roots on its own schedule.
        options.attempts = 1;
        options.cache_size = 0;
        let inner = TokioResolver::builder_with_config(config, TokioConnectionProvider::default())
            .with_options(options)
            .build();
        DnsResolver {
            inner: Arc::new(inner),
        }
    }

    /// The resolver `config` names. Fails only when the system's configuration cannot be
    /// read (no `/etc/resolv.conf`, say), saying so.
    pub fn from_config(config: &DnsResolverConfig) -> std::io::Result<Self> {
        match config {
            DnsResolverConfig::System => Self::system(),
            DnsResolverConfig::Servers(s) if s.is_empty() => Err(std::io::Error::other(
                "no name servers given for DNS discovery",
            )),
            DnsResolverConfig::Servers(s) => Ok(Self::with_servers(s)),
        }
    }

    /// Every TXT record at `name`, each with its character-strings joined with no separator.
    pub async fn lookup_txt(&self, name: &str) -> Result<Vec<String>, ResolveError> {
        let fqdn = if name.ends_with('.') {
            name.to_owned()
        } else {
            format!("{name}.")
        };
        match self.inner.txt_lookup(fqdn).await {
            Ok(lookup) => Ok(lookup
                .iter()
                .map(|txt| {
                    let bytes: Vec<u8> = txt
                        .txt_data()
                        .iter()
                        .flat_map(|s| s.iter().copied())
                        .collect();
                    String::from_utf8_lossy(&bytes).into_owned()
                })
                .collect()),
            Err(e) if e.is_no_records_found() || e.is_nx_domain() => Err(ResolveError::NotFound),
            Err(e) => Err(ResolveError::Failed(e.to_string())),
        }
    }
}
